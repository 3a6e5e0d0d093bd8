package redis

import "sync"

// notifier wakes this process's waiting Acquire calls when something may
// let them in: a bucket slot freed (per bucket key) or a global token given
// back at once. A waiter reads the sequence numbers before it asks Redis,
// and registers afterwards with them: when a signal came in between, the
// registration fails and the waiter asks again at once, so no wake-up is
// lost. Waits on channels are durably blocking, which testing/synctest
// needs.
type notifier struct {
	mu     sync.Mutex
	gseq   uint64 // global signals
	bseq   uint64 // bucket signals, any key
	global chan struct{}
	keys   map[string]chan struct{}
}

// maxWatchedKeys bounds the notifier's map of bucket keys.
const maxWatchedKeys = 4096

func newNotifier() *notifier {
	return &notifier{global: make(chan struct{}), keys: make(map[string]chan struct{})}
}

// seqs returns the current sequence numbers.
func (n *notifier) seqs() (g, b uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gseq, n.bseq
}

// watchGlobal returns a channel closed on the next global signal, or nil
// when one came after the sequence number g was read.
func (n *notifier) watchGlobal(g uint64) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gseq != g {
		return nil
	}
	return n.global
}

// watchKey returns a channel closed on the next signal of key, or nil when
// any bucket signal came after the sequence number b was read.
func (n *notifier) watchKey(key string, b uint64) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.bseq != b {
		return nil
	}
	ch := n.keys[key]
	if ch == nil {
		if len(n.keys) >= maxWatchedKeys {
			// Keys whose waiters left on a timer are never signalled:
			// wake everyone (harmless: they ask again) rather than grow.
			for k, c := range n.keys {
				close(c)
				delete(n.keys, k)
			}
		}
		ch = make(chan struct{})
		n.keys[key] = ch
	}
	return ch
}

// signal wakes the waiters of keys, and of the global token when global
// is set.
func (n *notifier) signal(global bool, keys ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if global {
		n.gseq++
		close(n.global)
		n.global = make(chan struct{})
	}
	if len(keys) > 0 {
		n.bseq++
	}
	for _, k := range keys {
		if ch := n.keys[k]; ch != nil {
			close(ch)
			delete(n.keys, k)
		}
	}
}
