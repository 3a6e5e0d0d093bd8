package conformance

import (
	"testing"

	"github.com/cordkit/cordkit/protocols"
)

// Run runs, as subtests named after them, the suites of every part sheet
// sets, in the style of testing/slogtest.Run: an implementation package
// that offers a partial TypeSheet (impl/fast, say) checks all of it with
//
//	func TestConformance(t *testing.T) { conformance.Run(t, fast.TypeSheet()) }
//
// A nil field is skipped with a message naming it. The suites are:
//
//	Codec               TestCodec
//	NewBucket           TestBucket
//	NewRateLimiter      TestRateLimiter, with the sheet's NewBucket
//	NewHTTPClient       TestHTTPClient, with a limiter from the sheet's
//	                    NewRateLimiter (skipped without one: this package
//	                    cannot build the reference limiter)
//	NewInflater         TestInflater
//	NewDispatcher       TestDispatcher
//	NewKeepAlive        TestKeepAlive
//	NewIdentifyLimiter  TestIdentifyLimiter
//	NewSendLimiter      TestSendLimiter
//	SessionStore        skipped: see below
//	NewShard            TestShard, with the sheet's Codec, NewInflater,
//	                    NewKeepAlive, NewSendLimiter and NewIdentifyLimiter
//	NewGateway          TestGateway, with the sheet's NewShard and the
//	                    parts above
//
// The parts the sheet leaves nil are passed nil to the constructors under
// test, which must then supply their own defaults (the reference
// constructors do). Logger, HTTPDoer and Dialer are not used: the suites
// log to the test, and reach the mock through their own in-memory Doer and
// Dialer.
//
// TestSessionStore needs an empty store for each subtest, and a TypeSheet
// holds one store, which may hold a running bot's sessions: Run skips it.
// Call [TestSessionStore] with a constructor instead.
func Run(t *testing.T, sheet protocols.TypeSheet) {
	t.Helper()
	Options{}.Run(t, sheet)
}

// Run is [Run] with options.
func (o Options) Run(t *testing.T, sheet protocols.TypeSheet) {
	t.Helper()
	suite := func(name, field string, set bool, run func(t *testing.T)) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			if !set {
				t.Skipf("TypeSheet.%s is nil", field)
			}
			run(t)
		})
	}

	suite("TestCodec", "Codec", sheet.Codec != nil, func(t *testing.T) {
		o.TestCodec(t, func(*testing.T) protocols.Codec { return sheet.Codec })
	})
	suite("TestBucket", "NewBucket", sheet.NewBucket != nil, func(t *testing.T) {
		o.TestBucket(t, func(*testing.T) protocols.Bucket { return sheet.NewBucket() })
	})
	suite("TestRateLimiter", "NewRateLimiter", sheet.NewRateLimiter != nil, func(t *testing.T) {
		o.TestRateLimiter(t, func(t *testing.T, p protocols.RateLimiterParams) protocols.RateLimiter {
			p.NewBucket = sheet.NewBucket
			l, err := sheet.NewRateLimiter(p)
			if err != nil {
				t.Fatalf("TypeSheet.NewRateLimiter: %v", err)
			}
			return l
		})
	})
	suite("TestHTTPClient", "NewHTTPClient", sheet.NewHTTPClient != nil, func(t *testing.T) {
		if sheet.NewRateLimiter == nil {
			t.Skip("TypeSheet.NewRateLimiter is nil, and TestHTTPClient needs a limiter: call conformance.TestHTTPClient with one")
		}
		o.TestHTTPClient(t, func(t *testing.T, p protocols.HTTPClientParams) protocols.HTTPClient {
			l, err := sheet.NewRateLimiter(protocols.RateLimiterParams{NewBucket: sheet.NewBucket, GlobalLimit: 50, Logger: p.Logger})
			if err != nil {
				t.Fatalf("TypeSheet.NewRateLimiter: %v", err)
			}
			t.Cleanup(func() { _ = l.Close() })
			p.RateLimiter = l
			c, err := sheet.NewHTTPClient(p)
			if err != nil {
				t.Fatalf("TypeSheet.NewHTTPClient: %v", err)
			}
			return c
		})
	})
	suite("TestInflater", "NewInflater", sheet.NewInflater != nil, func(t *testing.T) {
		o.TestInflater(t, func(_ *testing.T, mode protocols.Compression) (protocols.Inflater, error) {
			return sheet.NewInflater(mode)
		})
	})
	suite("TestDispatcher", "NewDispatcher", sheet.NewDispatcher != nil, func(t *testing.T) {
		o.TestDispatcher(t, func(*testing.T) protocols.Dispatcher { return sheet.NewDispatcher() })
	})
	suite("TestKeepAlive", "NewKeepAlive", sheet.NewKeepAlive != nil, func(t *testing.T) {
		o.TestKeepAlive(t, func(*testing.T) protocols.KeepAlive { return sheet.NewKeepAlive() })
	})
	suite("TestIdentifyLimiter", "NewIdentifyLimiter", sheet.NewIdentifyLimiter != nil, func(t *testing.T) {
		o.TestIdentifyLimiter(t, func(t *testing.T, p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter {
			l, err := sheet.NewIdentifyLimiter(p)
			if err != nil {
				t.Fatalf("TypeSheet.NewIdentifyLimiter: %v", err)
			}
			return l
		})
	})
	suite("TestSendLimiter", "NewSendLimiter", sheet.NewSendLimiter != nil, func(t *testing.T) {
		o.TestSendLimiter(t, func(*testing.T) protocols.SendLimiter { return sheet.NewSendLimiter() })
	})
	t.Run("TestSessionStore", func(t *testing.T) {
		if sheet.SessionStore == nil {
			t.Skip("TypeSheet.SessionStore is nil")
		}
		t.Skip("TypeSheet.SessionStore is one store, and TestSessionStore needs an empty one per subtest: call conformance.TestSessionStore with a constructor")
	})
	suite("TestShard", "NewShard", sheet.NewShard != nil, func(t *testing.T) {
		o := o
		if sheet.NewInflater != nil {
			if in, err := sheet.NewInflater(protocols.CompressZstdStream); err == nil && in != nil {
				o.ZstdStream = true
			}
		}
		o.TestShard(t, func(t *testing.T, p protocols.ShardParams) protocols.Shard {
			fillShardParts(t, sheet, &p)
			sh, err := sheet.NewShard(p)
			if err != nil {
				t.Fatalf("TypeSheet.NewShard: %v", err)
			}
			return sh
		})
	})
	suite("TestGateway", "NewGateway", sheet.NewGateway != nil, func(t *testing.T) {
		o.TestGateway(t, func(t *testing.T, p protocols.GatewayParams) protocols.Gateway {
			p.NewShard = sheet.NewShard
			p.NewKeepAlive, p.NewSendLimiter, p.NewIdentifyLimiter = sheet.NewKeepAlive, sheet.NewSendLimiter, sheet.NewIdentifyLimiter
			p.Shard.Codec, p.Shard.NewInflater = sheet.Codec, sheet.NewInflater
			g, err := sheet.NewGateway(p)
			if err != nil {
				t.Fatalf("TypeSheet.NewGateway: %v", err)
			}
			return g
		})
	})
}

// fillShardParts gives p the sheet's parts for one shard.
func fillShardParts(t *testing.T, sheet protocols.TypeSheet, p *protocols.ShardParams) {
	t.Helper()
	p.Codec, p.NewInflater = sheet.Codec, sheet.NewInflater
	if sheet.NewKeepAlive != nil {
		p.KeepAlive = sheet.NewKeepAlive()
	}
	if sheet.NewSendLimiter != nil {
		p.SendLimiter = sheet.NewSendLimiter()
	}
	if sheet.NewIdentifyLimiter != nil {
		l, err := sheet.NewIdentifyLimiter(protocols.IdentifyLimiterParams{MaxConcurrency: 1})
		if err != nil {
			t.Fatalf("TypeSheet.NewIdentifyLimiter: %v", err)
		}
		p.IdentifyLimiter = l
	}
}
