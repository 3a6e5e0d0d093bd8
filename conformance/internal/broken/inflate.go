package broken

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"io"

	"github.com/cordkit/cordkit/protocols"
)

// Unlike the REST ones, some of the gateway implementations in this
// package are small standalone ones rather than decorators, where no
// decorator can add the bug (a reversed handler order, a missing jitter, a
// reader per message).

// syncFlush ends every zlib-stream message.
var syncFlush = []byte{0x00, 0x00, 0xff, 0xff}

// inflaterFunc builds the broken inflater for zlib-stream with wrap, and
// leaves the other modes to next.
func inflaterFunc(next protocols.InflaterFunc, modes []protocols.Compression, wrap func(next protocols.Inflater) protocols.Inflater) protocols.InflaterFunc {
	return func(mode protocols.Compression) (protocols.Inflater, error) {
		in, err := next(mode)
		if err != nil {
			return nil, err
		}
		for _, m := range modes {
			if m == mode {
				return wrap(in), nil
			}
		}
		return in, nil
	}
}

var zlibStream = []protocols.Compression{protocols.CompressZlibStream}

// PerMessageReader inflates every zlib-stream message with a new reader,
// the most common zlib-stream bug: the second message refers back to the
// first one's output, which the new reader never saw. It breaks "One
// Inflater serves one connection at a time: for zlib-stream, a single
// inflate context spans all the connection's messages, and one message may
// span several websocket frames." and fails
// TestInflater/ContextSpansMessages. Other modes come from next.
func PerMessageReader(next protocols.InflaterFunc) protocols.InflaterFunc {
	return inflaterFunc(next, zlibStream, func(protocols.Inflater) protocols.Inflater { return &perMessage{} })
}

type perMessage struct {
	buf     []byte
	started bool
}

func (p *perMessage) Inflate(frame []byte) ([]byte, bool, error) {
	p.buf = append(p.buf, frame...)
	if !bytes.HasSuffix(p.buf, syncFlush) {
		return nil, false, nil
	}
	in := bytes.NewReader(p.buf)
	p.buf = nil
	var r io.Reader
	if !p.started {
		zr, err := zlib.NewReader(in)
		if err != nil {
			return nil, false, err
		}
		p.started, r = true, zr
	} else {
		r = flate.NewReader(in) // a fresh context: no window of the earlier messages
	}
	out, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) { // a flushed stream ends without its trailer
		return nil, false, err
	}
	return out, true, nil
}

func (p *perMessage) Reset() { p.buf, p.started = nil, false }

// IgnorePartialFrames drops every zlib-stream frame that does not end with
// the sync-flush marker, as if each frame were a whole message. It breaks
// "A message split over several frames is returned whole when its last
// frame arrives." and fails TestInflater/SplitMessageReturnedWhole,
// OneByteAtATime and MarkerSplitAcrossFrames.
func IgnorePartialFrames(next protocols.InflaterFunc) protocols.InflaterFunc {
	return inflaterFunc(next, zlibStream, func(in protocols.Inflater) protocols.Inflater { return partialDropper{in} })
}

type partialDropper struct{ protocols.Inflater }

func (p partialDropper) Inflate(frame []byte) ([]byte, bool, error) {
	if !bytes.HasSuffix(frame, syncFlush) {
		return nil, false, nil
	}
	return p.Inflater.Inflate(frame)
}

// RetainFrames keeps the frames of an unfinished zlib-stream message by
// reference and copies them only when the message is complete, and returns
// an uncompressed frame itself as the message: zero-copy where the caller
// reuses its buffer. It breaks "Otherwise it returns done=false and keeps
// what it needs of frame (it must copy: frame is not retained past the
// call)." and fails TestInflater/FrameNotRetained.
func RetainFrames(next protocols.InflaterFunc) protocols.InflaterFunc {
	return func(mode protocols.Compression) (protocols.Inflater, error) {
		in, err := next(mode)
		switch {
		case err != nil:
			return nil, err
		case mode == protocols.CompressZlibStream:
			return &retainer{next: in}, nil
		case mode == protocols.CompressNone:
			return aliasing{in}, nil
		}
		return in, nil
	}
}

type retainer struct {
	next protocols.Inflater
	held [][]byte // the caller's frames, not copies
}

func (r *retainer) Inflate(frame []byte) ([]byte, bool, error) {
	r.held = append(r.held, frame)
	if !bytes.HasSuffix(r.tail(), syncFlush) {
		return nil, false, nil
	}
	whole := bytes.Join(r.held, nil)
	r.held = nil
	return r.next.Inflate(whole)
}

// tail returns the last four bytes held.
func (r *retainer) tail() []byte {
	var t []byte
	for i := len(r.held) - 1; i >= 0 && len(t) < 4; i-- {
		t = append(bytes.Clone(r.held[i]), t...)
	}
	return t[max(0, len(t)-4):]
}

func (r *retainer) Reset() {
	r.held = nil
	r.next.Reset()
}

type aliasing struct{ protocols.Inflater }

func (a aliasing) Inflate(frame []byte) ([]byte, bool, error) { return frame, true, nil }

// IgnoreReset has a zlib-stream Reset that does nothing, so a new
// connection's stream is fed into the old context. It breaks "Reset starts
// a new stream, for a new connection." and fails
// TestInflater/ResetStartsNewStream and ResetDropsPartialMessage.
func IgnoreReset(next protocols.InflaterFunc) protocols.InflaterFunc {
	return inflaterFunc(next, zlibStream, func(in protocols.Inflater) protocols.Inflater { return stubbornInflater{in} })
}

type stubbornInflater struct{ protocols.Inflater }

func (stubbornInflater) Reset() {}
