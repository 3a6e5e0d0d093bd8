package mockdiscord

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Discord JSON error codes the mock sends.
const (
	codeGeneral            = 0
	codeUnknownChannel     = 10003
	codeUnknownGuild       = 10004
	codeUnknownMessage     = 10008
	codeUnknownEmoji       = 10014
	codeUnknownWebhook     = 10015
	codeRequestTooLarge    = 40005
	codeAlreadyAcked       = 40060
	codeCloudflare         = 40333
	codeEditOthersMessage  = 50005
	codeEmptyMessage       = 50006
	codeInvalidToken       = 50014
	codeInvalidWebhookTok  = 50027
	codeInvalidFormBody    = 50035
	codeInvalidAPIVersion  = 50041
	codeInvalidJSON        = 50109
	msgInvalidFormBody     = "Invalid Form Body"
	msgCloudflare          = "Cloudflare is blocking your request. This is often caused by a missing or invalid User-Agent header; see https://discord.com/developers/docs/reference#user-agent."
	msgBan                 = "You are being blocked from accessing our API temporarily due to exceeding our rate limits frequently. Please read our docs at https://discord.com/developers/docs/topics/rate-limits to prevent this moving forward."
	msgRateLimited         = "You are being rate limited."
	msgResourceRateLimited = "The resource is being rate limited."
)

// apiError is Discord's JSON error body.
type apiError struct {
	Message string     `json:"message"`
	Code    int        `json:"code"`
	Errors  formErrors `json:"errors,omitempty"`
}

// rateLimitBody is the JSON body of a 429.
type rateLimitBody struct {
	Message    string      `json:"message"`
	RetryAfter json.Number `json:"retry_after"`
	Global     bool        `json:"global"`
	Code       int         `json:"code,omitempty"`
}

// formErrors is the nested "errors" tree of a 50035 response: keys mirror
// the request body, leaves are {"_errors": [{"code", "message"}]}.
type formErrors map[string]any

// add records an error at path (no path: the whole request).
func (f formErrors) add(code, message string, path ...string) {
	m := map[string]any(f)
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	list, _ := m["_errors"].([]map[string]string)
	m["_errors"] = append(list, map[string]string{"code": code, "message": message})
}

// ceilMillis rounds d up to whole milliseconds.
func ceilMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// millisString formats ms as seconds with three decimals: 2001 -> "2.001".
func millisString(ms int64) string {
	return strconv.FormatInt(ms/1000, 10) + "." + strconv.FormatInt(1000+ms%1000, 10)[1:]
}

// secondsString formats d, rounded up to the millisecond, as seconds with
// three decimals.
func secondsString(d time.Duration) string { return millisString(ceilMillis(d)) }

// epochString formats t, rounded up to the millisecond, as Unix seconds
// with three decimals.
func epochString(t time.Time) string {
	ns := t.UnixNano()
	ms := ns / int64(time.Millisecond)
	if ns%int64(time.Millisecond) != 0 {
		ms++
	}
	return millisString(ms)
}

// retryAfterHeader formats a Retry-After value: whole seconds rounded up,
// or three decimals when fractional is set.
func retryAfterHeader(d time.Duration, fractional bool) string {
	if fractional {
		return secondsString(d)
	}
	ms := ceilMillis(d)
	return strconv.FormatInt(int64(math.Ceil(float64(ms)/1000)), 10)
}

// statusMessage is Discord's generic message for a status: "404: Not Found".
func statusMessage(status int) string {
	return strconv.Itoa(status) + ": " + http.StatusText(status)
}
