package mockdiscord

import (
	"bytes"
	"compress/zlib"
)

// zlibSuffix ends every zlib-stream message: the Z_SYNC_FLUSH marker.
var zlibSuffix = []byte{0x00, 0x00, 0xff, 0xff}

// zlibPayload compresses one payload on its own (payload compression,
// RFC 1950, no context shared between payloads).
func zlibPayload(p []byte) []byte {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	_, _ = zw.Write(p)
	_ = zw.Close()
	return b.Bytes()
}

// splitPoints returns the end offsets of up to parts pieces of data, the
// last being len(data). With stream set, no piece but the last ends with
// the zlib-stream flush marker, so that a client buffering until the
// marker waits for the whole payload.
func splitPoints(data []byte, parts int, stream bool) []int {
	if parts > len(data) {
		parts = len(data)
	}
	var cuts []int
	for i := 1; i < parts; i++ {
		cut := len(data) * i / parts
		if cut == 0 || (len(cuts) > 0 && cut <= cuts[len(cuts)-1]) {
			continue
		}
		if stream && bytes.HasSuffix(data[:cut], zlibSuffix) {
			continue
		}
		cuts = append(cuts, cut)
	}
	return append(cuts, len(data))
}
