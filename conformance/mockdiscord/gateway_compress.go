package mockdiscord

import (
	"bytes"
	"compress/zlib"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// transportCompressed reports whether the connection asked for transport
// compression (zlib-stream or zstd-stream), which turns payload
// compression off. Both writers are set before the connection is served.
func (c *gwConn) transportCompressed() bool { return c.zw != nil || c.zstd != nil }

// zstdWindow is the window the mock's zstd-stream declares: 256 KiB
// (window descriptor 0x40), what Discord's frames declare.
const zstdWindow = 256 << 10

// zstdStream is a connection's zstd-stream compressor: as Discord does, one
// zstd frame for the whole connection, never ended, and after each payload
// a flush (ZSTD_e_flush: the pending data becomes a complete block, the
// frame goes on). Each payload's bytes make one websocket message, which
// the client decodes with the connection's one decompression context
// until that message's input is used up. The frame has no checksum and no
// content size, as Discord's.
type zstdStream struct {
	enc *zstd.Encoder
}

// newZstdStream returns a zstd-stream compressor writing to w. Its encoder
// has concurrency 1, so it compresses in the caller's goroutine and starts
// none: dropping it leaks nothing, and it needs no Close.
func newZstdStream(w io.Writer) *zstdStream {
	enc, err := zstd.NewWriter(w,
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithEncoderCRC(false),
		zstd.WithLowerEncoderMem(true),
	)
	if err != nil { // only for invalid options
		panic("mockdiscord: zstd encoder: " + err.Error())
	}
	return &zstdStream{enc: enc}
}

// write compresses one payload and flushes, so that what it wrote ends
// with a complete block.
func (z *zstdStream) write(p []byte) error {
	if _, err := z.enc.Write(p); err != nil {
		return err
	}
	return z.enc.Flush()
}

// zlibSuffix ends every zlib-stream message: the Z_SYNC_FLUSH marker.
var zlibSuffix = []byte{0x00, 0x00, 0xff, 0xff}

// zlibPayload compresses one payload on its own (payload compression,
// RFC 1950, no context shared between payloads).
// The writers are pooled: a zlib.Writer allocates about 800 KB, which
// would otherwise dominate the cost of every small payload.
func zlibPayload(p []byte) []byte {
	var b bytes.Buffer
	zw, _ := zlibWriters.Get().(*zlib.Writer)
	if zw == nil {
		zw = zlib.NewWriter(&b)
	} else {
		zw.Reset(&b)
	}
	_, _ = zw.Write(p)
	_ = zw.Close()
	zlibWriters.Put(zw)
	return b.Bytes()
}

// zlibWriters pools the writers of zlibPayload.
var zlibWriters sync.Pool

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
