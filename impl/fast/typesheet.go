package fast

import "github.com/cordkit/cordkit/protocols"

// TypeSheet returns a [protocols.TypeSheet] with the parts this package
// improves set, and every other field nil, which means the reference
// implementation. So far Codec is set, to [Codec]{}, NewDispatcher, to
// [NewDispatcher], NewInflater, to [NewInflater] (which also serves
// zstd-stream, so a Config may choose protocols.CompressZstdStream),
// Dialer, to a [Dialer] with its low-memory defaults, and NewRateLimiter,
// to [NewRateLimiter] (one request at a time per bucket, as the reference;
// use [RateLimiterOptions]{InFlight: true}.New for the in-flight mode; it
// ignores the sheet's NewBucket, as its buckets are built in).
//
// Set its Logger and any other field before passing it to cordkit.New.
func TypeSheet() protocols.TypeSheet {
	return protocols.TypeSheet{Codec: Codec{}, NewDispatcher: NewDispatcher, NewInflater: NewInflater, Dialer: &Dialer{}, NewRateLimiter: NewRateLimiter}
}
