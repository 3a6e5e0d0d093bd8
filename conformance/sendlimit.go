package conformance

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// Rule sentences of the SendLimiter suite, quoted from package protocols.
const (
	ruleSendDoc        = "SendLimiter paces the payloads one connection sends: 120 per 60 seconds, with a few slots kept for heartbeats."
	ruleSend120        = "No more than 120 payloads are admitted in any 60 seconds."
	ruleSendHeartbeats = "Heartbeats are admitted even when other payloads have used their share."
	ruleSendReset      = "Reset forgets what was sent, for a new connection whose HELLO announced heartbeatInterval; the limiter sizes the room it keeps for heartbeats from it."
	ruleSendInterval   = "Other payloads leave room for every heartbeat the interval given to Reset brings in 60 seconds, plus one."
	ruleSendSafe       = "A SendLimiter must be safe for concurrent use."
	ruleSendWindow     = "A payload admitted at time t counts during [t, t+60s)."
)

// Discord's gateway send limit.
const (
	sendLimit  = 120
	sendWindow = time.Minute
	// heartbeatSlots is how many heartbeats must find room in a window
	// that other payloads filled: Discord's interval of 41.25 s puts two
	// heartbeats in some windows of 60 s.
	heartbeatSlots = 2
)

// TestSendLimiter tests a [protocols.SendLimiter] implementation.
// newLimiter is called once or more per subtest, inside the subtest's
// synctest bubble, and must return a new limiter for a new connection. A
// payload counts as sent when Wait returns nil.
func TestSendLimiter(t *testing.T, newLimiter func(t *testing.T) protocols.SendLimiter) {
	t.Helper()
	Options{}.TestSendLimiter(t, newLimiter)
}

// TestSendLimiter is [TestSendLimiter] with options.
func (o Options) TestSendLimiter(t *testing.T, newLimiter func(t *testing.T) protocols.SendLimiter) {
	t.Helper()
	runRules(t, o, "TestSendLimiter", sendRules, func(t *testing.T) func() protocols.SendLimiter {
		return func() protocols.SendLimiter {
			t.Helper()
			l := newLimiter(t)
			if l == nil {
				t.Fatal("conformance: newLimiter returned nil")
			}
			return l
		}
	})
}

// sent records when payloads were admitted.
type sent struct {
	mu sync.Mutex
	at []time.Time
	hb []bool
}

func (s *sent) add(heartbeat bool) {
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.hb = append(s.hb, heartbeat)
	s.mu.Unlock()
}

func (s *sent) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

// countOthers returns how many payloads other than heartbeats were
// admitted before by.
func (s *sent) countOthers(by time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i, at := range s.at {
		if !s.hb[i] && at.Before(by) {
			n++
		}
	}
	return n
}

// busiest returns the most payloads admitted in one window of 60 s, and
// when that window began.
func (s *sent) busiest() (int, time.Time) {
	s.mu.Lock()
	at := slices.Clone(s.at)
	s.mu.Unlock()
	slices.SortFunc(at, time.Time.Compare)
	most, from := 0, time.Time{}
	i := 0
	for j := range at {
		for at[j].Sub(at[i]) >= sendWindow {
			i++
		}
		if n := j - i + 1; n > most {
			most, from = n, at[i]
		}
	}
	return most, from
}

// sender calls Wait n times in a row from its own goroutine, recording
// every admission in s, until one fails.
func sender(t *caseT, l protocols.SendLimiter, s *sent, n int, heartbeat bool) *attempt[int] {
	return start(t, func(ctx context.Context) (int, error) {
		for i := range n {
			if err := l.Wait(ctx, heartbeat); err != nil {
				return i, err
			}
			s.add(heartbeat)
		}
		return n, nil
	})
}

// sendOne starts one Wait in its own goroutine.
func sendOne(t *caseT, ctx context.Context, l protocols.SendLimiter, heartbeat bool) *attempt[struct{}] {
	return startCtx(t, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, l.Wait(ctx, heartbeat) })
}

// saturate has a sender push 200 payloads other than heartbeats, and
// returns once it is blocked.
func saturate(t *caseT, l protocols.SendLimiter, s *sent) *attempt[int] {
	a := sender(t, l, s, 200, false)
	settle()
	return a
}

var sendRules = []rule[func() protocols.SendLimiter]{
	{
		name: "NoMoreThan120PerMinute",
		rule: ruleSend120,
		run: func(t *caseT, newLimiter func() protocols.SendLimiter) {
			l := newLimiter()
			var s sent
			others := sender(t, l, &s, 300, false)
			// Far more heartbeats than Discord asks for: they too count.
			beats := start(t, func(ctx context.Context) (int, error) {
				for i := range 36 {
					if err := l.Wait(ctx, true); err != nil {
						return i, err
					}
					s.add(true)
					time.Sleep(5 * time.Second)
				}
				return 36, nil
			})
			by := time.Now().Add(10 * time.Minute)
			others.await(by)
			beats.await(by)
			if most, from := s.busiest(); most > sendLimit {
				t.Errorf("SendLimiter.Wait: admitted %d payloads in the 60 s from %s, want at most %d", most, t.since(from), sendLimit)
			}
		},
	},
	{
		name: "HeartbeatsFindRoom",
		rule: ruleSendHeartbeats,
		run: func(t *caseT, newLimiter func() protocols.SendLimiter) {
			l := newLimiter()
			var s sent
			saturate(t, l, &s)
			time.Sleep(time.Second)
			n := s.count()
			for i := range heartbeatSlots {
				asked := time.Now()
				hb := sendOne(t, t.ctx, l, true)
				if !hb.await(asked.Add(lateness)) {
					t.Fatalf("SendLimiter.Wait(heartbeat %d) at %s, after %d other payloads and with more waiting: not admitted by %s, want at once",
						i+1, t.since(asked), n, t.since(asked.Add(lateness)))
				}
				if hb.err != nil {
					t.Fatalf("SendLimiter.Wait(heartbeat %d): got error %v, want admitted at once", i+1, hb.err)
				}
				time.Sleep(5 * time.Second)
			}
		},
	},
	{
		// The reference's fixed reserve of 3 once let a 10 s interval's
		// fourth heartbeat in a window wait 20 s behind a burst, and the
		// gateway closed the connection for the missed beat.
		name: "ReserveFollowsHeartbeatInterval",
		rule: ruleSendInterval,
		run: func(t *caseT, newLimiter func() protocols.SendLimiter) {
			l := newLimiter()
			const interval = 10 * time.Second
			l.Reset(interval)
			var s sent
			saturate(t, l, &s)
			// One heartbeat every interval for a whole window, plus one
			// answer to a server op 1: seven at 10 s.
			beats := int(sendWindow/interval) + 1
			for i := range beats {
				asked := time.Now()
				hb := sendOne(t, t.ctx, l, true)
				if !hb.await(asked.Add(lateness)) {
					t.Fatalf("SendLimiter.Wait(heartbeat %d of %d) at %s with a %v interval given to Reset and other payloads waiting: not admitted by %s, want at once",
						i+1, beats, t.since(asked), interval, t.since(asked.Add(lateness)))
				}
				if hb.err != nil {
					t.Fatalf("SendLimiter.Wait(heartbeat %d): got error %v, want admitted at once", i+1, hb.err)
				}
				if i < beats-2 {
					time.Sleep(interval)
				}
			}
		},
	},
	{
		name: "NonHeartbeatsLeaveRoom",
		rule: ruleSendDoc,
		run: func(t *caseT, newLimiter func() protocols.SendLimiter) {
			l := newLimiter()
			var s sent
			begin := time.Now()
			saturate(t, l, &s)
			time.Sleep(sendWindow - time.Second)
			settle()
			if n := s.countOthers(begin.Add(sendWindow)); n > sendLimit-heartbeatSlots {
				t.Errorf("SendLimiter.Wait: admitted %d payloads other than heartbeats within 60 s, want at most %d: %d of the %d slots stay for heartbeats (every 41.25 s)",
					n, sendLimit-heartbeatSlots, heartbeatSlots, sendLimit)
			}
		},
	},
	{
		name: "NonHeartbeatsGetFullRate",
		rule: ruleSendDoc,
		run: func(t *caseT, newLimiter func() protocols.SendLimiter) {
			l := newLimiter()
			var s sent
			begin := time.Now()
			a := sender(t, l, &s, 200, false)
			// 120 per minute less a few for heartbeats: 200 take two windows.
			by := begin.Add(2*sendWindow + lateness)
			if !a.await(by) {
				t.Errorf("SendLimiter.Wait: %d of 200 payloads admitted by %s, want all: the limit is 120 per 60 s, less a few slots for heartbeats", s.count(), t.since(by))
			}
		},
	},
	{
		name: "SlotFreesAfterSixtySeconds",
		rule: ruleSendWindow,
		run: func(t *caseT, newLimiter func() protocols.SendLimiter) {
			l := newLimiter()
			var s sent
			begin := time.Now()
			saturate(t, l, &s)
			first := s.count()
			if first == 0 {
				t.Fatalf("SendLimiter.Wait: admitted nothing at %s, want a first batch at once", t.since(begin))
			}
			free := begin.Add(sendWindow)
			time.Sleep(sendWindow - time.Millisecond)
			settle()
			if n := s.count(); n != first {
				t.Errorf("SendLimiter.Wait: admitted %d payloads at %s and %d more by %s, want none more before the first ones leave the window at %s",
					first, t.since(begin), n-first, t.since(time.Now()), t.since(free))
			}
			time.Sleep(time.Millisecond + lateness)
			settle()
			if n := s.count(); n <= first {
				t.Errorf("SendLimiter.Wait: no payload admitted by %s, want more once the %d admitted at %s leave the window at %s",
					t.since(time.Now()), first, t.since(begin), t.since(free))
			}
		},
	},
	{
		name: "ResetForgetsSent",
		rule: ruleSendReset,
		run: func(t *caseT, newLimiter func() protocols.SendLimiter) {
			l := newLimiter()
			var s sent
			a := saturate(t, l, &s)
			time.Sleep(10 * time.Second)
			settle()
			before := s.count()
			l.Reset(0)
			reset := time.Now()
			if !a.await(reset.Add(lateness)) {
				t.Errorf("SendLimiter.Reset at %s, after %d payloads: %d more admitted by %s, want the %d still waiting admitted at once",
					t.since(reset), before, s.count()-before, t.since(reset.Add(lateness)), 200-before)
			}
		},
	},
	{
		name: "WaitHonorsContext",
		rule: ruleCtxErr,
		run: func(t *caseT, newLimiter func() protocols.SendLimiter) {
			l := newLimiter()
			var s sent
			saturate(t, l, &s)
			time.Sleep(time.Second)

			ctx, cancel := context.WithCancel(t.ctx)
			cancel()
			pre := sendOne(t, ctx, l, false)
			ctxError(t, "SendLimiter.Wait (context cancelled before the call, window full)", pre, time.Now().Add(lateness), context.Canceled)

			ctx, cancel = context.WithCancel(t.ctx)
			waiting := sendOne(t, ctx, l, false)
			time.Sleep(time.Second)
			mustWait(t, "SendLimiter.Wait", "the window is full", waiting)
			cancel()
			ctxError(t, "SendLimiter.Wait (context cancelled while waiting)", waiting, time.Now().Add(lateness), context.Canceled)

			ctx, cancel = context.WithTimeout(t.ctx, 2*time.Second)
			defer cancel()
			timed := sendOne(t, ctx, l, false)
			ctxError(t, "SendLimiter.Wait (deadline 2s, window full for a minute)", timed, time.Now().Add(2*time.Second+lateness), context.DeadlineExceeded)
		},
	},
	{
		name: "ConcurrentSafeSend",
		rule: ruleSendSafe,
		run: func(t *caseT, newLimiter func() protocols.SendLimiter) {
			l := newLimiter()
			var s sent
			var as []*attempt[int]
			for g := range 8 {
				as = append(as, start(t, func(ctx context.Context) (int, error) {
					for i := range 40 {
						heartbeat := (g+i)%5 == 0
						if err := l.Wait(ctx, heartbeat); err != nil {
							return i, fmt.Errorf("SendLimiter.Wait (goroutine %d, payload %d): %w", g, i, err)
						}
						s.add(heartbeat)
					}
					return 40, nil
				}))
			}
			by := time.Now().Add(10 * time.Minute)
			for _, a := range as {
				if !a.await(by) {
					t.Errorf("SendLimiter.Wait: 320 payloads from 8 goroutines not all admitted by %s", t.since(by))
					break
				}
				if a.err != nil {
					t.Errorf("%v", a.err)
				}
			}
			if most, from := s.busiest(); most > sendLimit {
				t.Errorf("SendLimiter.Wait (8 goroutines): admitted %d payloads in the 60 s from %s, want at most %d", most, t.since(from), sendLimit)
			}
		},
	},
}
