package wait

import (
	"context"
	"net"
	"time"
)

// Sleep waits for d. It returns ctx.Err() when ctx ends first and
// [net.ErrClosed] when done is closed first; done may be nil. A d of zero or
// less returns at once, unless ctx has already ended.
func Sleep(ctx context.Context, d time.Duration, done <-chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return net.ErrClosed
	}
}

// Until waits until at, as [Sleep] does.
func Until(ctx context.Context, at time.Time, done <-chan struct{}) error {
	return Sleep(ctx, time.Until(at), done)
}
