package protocols

import (
	"context"
	"io"
	"net/http"
	"net/url"
)

// HTTPDoer sends one HTTP request. *http.Client satisfies it; a proxy, a
// recorder or an in-memory transport can stand in. The request's context
// carries cancellation, as with [http.RoundTripper].
//
// An HTTPDoer must be safe for concurrent use.
type HTTPDoer interface {
	Do(req *http.Request) (*http.Response, error)
}

// HTTPDoerFunc adapts a function to [HTTPDoer].
type HTTPDoerFunc func(req *http.Request) (*http.Response, error)

// Do calls f(req).
func (f HTTPDoerFunc) Do(req *http.Request) (*http.Response, error) { return f(req) }

// File is one attachment of a multipart request, sent as part files[n].
type File struct {
	// Name is the file name Discord shows.
	Name string
	// ContentType defaults to application/octet-stream.
	ContentType string
	// Reader supplies the content. It is read once per attempt; when it is
	// an io.Seeker it is rewound before a retry, otherwise the request is
	// not retried after its body was read.
	Reader io.Reader
}

// Request is one REST call to Discord.
type Request struct {
	// Route says where the request goes and how it is rate limited.
	Route Route
	// Query is appended to the path.
	Query url.Values
	// Body is the JSON body, already encoded; nil for none. With Files it
	// becomes the payload_json part.
	Body []byte
	// Files turns the request into multipart/form-data.
	Files []File
	// Reason is sent URL-encoded as X-Audit-Log-Reason when not empty.
	Reason string
	// Header holds extra headers. Authorization and User-Agent are set by
	// the client and cannot be overridden here.
	Header http.Header
	// NoAuth sends the request without the Authorization header, for
	// routes that take their credential in the path (webhooks with token).
	NoAuth bool
}

// Response is a successful (2xx) response, its body read in full.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the response headers.
	Header http.Header
	// Body is the response body; the caller owns it.
	Body []byte
	// RateLimit is what the response said about rate limits.
	RateLimit RateLimitInfo
}

// HTTPClient sends REST requests to Discord: it authenticates them, waits on
// its [RateLimiter], retries 429s, 5xx and network errors, and turns other
// failures into typed errors.
//
// Rules (quoted by the conformance suite):
//   - Every request carries Authorization, a DiscordBot User-Agent, and X-Audit-Log-Reason URL-encoded when a reason is given.
//   - A 4xx other than 429 is returned as *HTTPError with Discord's code, message and errors, and is not retried.
//   - A 5xx or network error is retried with backoff up to MaxRetries times.
//   - A 429 is retried after RetryAfter without counting as a failure of the request.
//   - After a 401 the token is remembered as invalid and later requests fail fast with ErrInvalidToken.
//   - Past the invalid-request budget, requests fail fast with ErrInvalidRequestBudget.
//
// An HTTPClient must be safe for concurrent use. Implementations should pass
// [github.com/cordkit/cordkit/conformance.TestHTTPClient].
type HTTPClient interface {
	// Do sends req and returns its 2xx response. Errors wrap ctx.Err() when
	// ctx ends, [ErrClosed] after Close, and are otherwise *HTTPError,
	// *RateLimitError or a sentinel of this package.
	Do(ctx context.Context, req *Request) (*Response, error)
	// Close releases the client's resources; later calls fail with
	// [ErrClosed]. It is idempotent.
	Close() error
}
