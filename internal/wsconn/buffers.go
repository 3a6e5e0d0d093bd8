package wsconn

import (
	"bufio"
	"math/bits"
	"net"
	"sync"
)

// The shared buffer pools: one sync.Pool per power-of-two size class, from
// 1<<minClass to 1<<maxClass bytes. A buffer travels in its own *[]byte
// box, allocated with it, so that Get and Put allocate nothing.
const (
	minClass = 9  // 512 bytes
	maxClass = 20 // 1 MiB
)

var pools [maxClass - minClass + 1]sync.Pool

// getBuf returns a box holding an empty buffer of capacity at least n: a
// pooled one of n's size class, or, above the largest class, a new one.
func getBuf(n int) *[]byte {
	if n > 1<<maxClass {
		b := make([]byte, 0, n)
		return &b
	}
	class := 0
	if n > 1<<minClass {
		class = bits.Len(uint(n-1)) - minClass
	}
	if box, _ := pools[class].Get().(*[]byte); box != nil {
		return box
	}
	b := make([]byte, 0, 1<<(class+minClass))
	return &b
}

// putBuf gives a box from getBuf back; nil and buffers of no class are
// dropped.
func putBuf(box *[]byte) {
	if box == nil {
		return
	}
	c := cap(*box)
	if c < 1<<minClass || c > 1<<maxClass || c&(c-1) != 0 {
		return
	}
	*box = (*box)[:0]
	pools[bits.Len(uint(c))-1-minClass].Put(box)
}

// reader is the Conn's buffered reader, a bufio.Reader that can give its
// buffer back. Reads of at least size bytes into an empty buffer go
// straight to the connection.
//
// With pool set, wait, called before each frame, gives the buffer back to
// the shared pools when it is empty, and waits for the frame's first bytes
// in tiny: an idle connection then holds no buffer. The next read that
// needs more takes a buffer from the pools again.
type reader struct {
	nc   net.Conn
	size int
	pool bool
	buf  []byte // buffered bytes are buf[r:w]; buf may be tiny[:]
	box  *[]byte
	r, w int
	err  error // of the read that filled the buffer, returned once it is empty
	tiny [16]byte
}

func (b *reader) init(nc net.Conn, size int, pool bool) {
	b.nc, b.size, b.pool = nc, size, pool
}

// adopt takes the bytes buffered in br, the handshake's reader.
func (b *reader) adopt(br *bufio.Reader) {
	n := br.Buffered()
	if n == 0 {
		return
	}
	b.grab(max(n, b.size))
	p, _ := br.Peek(n)
	b.w = copy(b.buf, p)
}

// grab gives b an empty buffer of at least n bytes, keeping the one it
// has when that is large enough.
func (b *reader) grab(n int) {
	b.r, b.w = 0, 0
	if cap(b.buf) < n {
		b.free()
		if b.pool {
			b.box = getBuf(n)
			b.buf = *b.box
		} else {
			b.buf = make([]byte, n)
		}
	}
	b.buf = b.buf[:cap(b.buf)]
}

// free gives the buffer back, dropping what it holds.
func (b *reader) free() {
	putBuf(b.box)
	b.buf, b.box = nil, nil
	b.r, b.w = 0, 0
}

// wait blocks until at least one byte is buffered, consuming nothing.
func (b *reader) wait() error {
	if b.r < b.w {
		return nil
	}
	if b.pool {
		b.free()
		b.buf = b.tiny[:]
	} else {
		b.grab(b.size)
	}
	return b.fill()
}

// fill reads once into the empty buffer.
func (b *reader) fill() error {
	if b.err != nil {
		err := b.err
		b.err = nil
		return err
	}
	for {
		n, err := b.nc.Read(b.buf)
		b.r, b.w = 0, n
		if n > 0 {
			b.err = err
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Read reads into p from the buffer, or from the connection when the
// buffer is empty.
func (b *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			err := b.err
			b.err = nil
			return 0, err
		}
		if len(p) >= b.size {
			return b.nc.Read(p) // large read: skip the copy
		}
		b.grab(b.size)
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// discard skips n bytes.
func (b *reader) discard(n int64) error {
	for n > 0 {
		if b.r == b.w {
			b.grab(b.size)
			if err := b.fill(); err != nil {
				return err
			}
		}
		k := int(min(int64(b.w-b.r), n))
		b.r += k
		n -= int64(k)
	}
	return nil
}
