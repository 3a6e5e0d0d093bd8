package fast

import "github.com/cordkit/cordkit/protocols"

// TypeSheet returns a [protocols.TypeSheet] with the parts this package
// improves set, and every other field nil, which means the reference
// implementation. So far Codec is set, to [Codec]{}, and NewDispatcher, to
// [NewDispatcher].
//
// Set its Logger and any other field before passing it to cordkit.New.
func TypeSheet() protocols.TypeSheet {
	return protocols.TypeSheet{Codec: Codec{}, NewDispatcher: NewDispatcher}
}
