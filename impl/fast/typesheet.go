package fast

import "github.com/cordkit/cordkit/protocols"

// TypeSheet returns a [protocols.TypeSheet] with the parts this package
// improves set, and every other field nil, which means the reference
// implementation. So far Codec is set, to [Codec]{}, NewDispatcher, to
// [NewDispatcher], and NewInflater, to [NewInflater] (which also serves
// zstd-stream, so a Config may choose protocols.CompressZstdStream).
//
// Set its Logger and any other field before passing it to cordkit.New.
func TypeSheet() protocols.TypeSheet {
	return protocols.TypeSheet{Codec: Codec{}, NewDispatcher: NewDispatcher, NewInflater: NewInflater}
}
