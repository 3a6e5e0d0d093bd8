package conformance_test

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/cordkit/cordkit/conformance"
	"github.com/cordkit/cordkit/conformance/internal/broken"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Factories for the reference implementation, optionally with one broken
// decorator in the way.

func newBucket(wrap func(protocols.Bucket) protocols.Bucket) func(*testing.T) protocols.Bucket {
	return func(*testing.T) protocols.Bucket {
		b := reference.NewBucket()
		if wrap != nil {
			b = wrap(b)
		}
		return b
	}
}

// limiterSetup says how a test builds a limiter: which bucket wrapper,
// which params rewrite and which limiter wrapper to apply to the
// reference.
type limiterSetup struct {
	bucket func(protocols.Bucket) protocols.Bucket
	params func(protocols.RateLimiterParams) protocols.RateLimiterParams
	wrap   func(protocols.RateLimiter) protocols.RateLimiter
}

func (s limiterSetup) build(t *testing.T, p protocols.RateLimiterParams) protocols.RateLimiter {
	t.Helper()
	if s.bucket != nil {
		p.NewBucket = func() protocols.Bucket { return s.bucket(reference.NewBucket()) }
	}
	if s.params != nil {
		p = s.params(p)
	}
	l, err := reference.NewRateLimiter(p)
	if err != nil {
		t.Fatalf("reference.NewRateLimiter: %v", err)
	}
	if s.wrap != nil {
		l = s.wrap(l)
	}
	return l
}

// clientSetup builds an HTTP client: a limiterSetup for its limiter, and a
// client wrapper.
type clientSetup struct {
	limiter  limiterSetup
	wrap     func(protocols.HTTPClient) protocols.HTTPClient
	amnesiac bool // a new client per request
}

func (s clientSetup) build(t *testing.T, p protocols.HTTPClientParams) protocols.HTTPClient {
	t.Helper()
	newOne := func() (protocols.HTTPClient, error) {
		l := s.limiter.build(t, protocols.RateLimiterParams{GlobalLimit: 50})
		t.Cleanup(func() { _ = l.Close() })
		p := p
		p.RateLimiter = l
		return reference.NewHTTPClient(p)
	}
	if s.amnesiac {
		return broken.Amnesiac(newOne)
	}
	c, err := newOne()
	if err != nil {
		t.Fatalf("reference.NewHTTPClient: %v", err)
	}
	if s.wrap != nil {
		c = s.wrap(c)
	}
	return c
}

func TestReferenceBucket(t *testing.T) {
	conformance.TestBucket(t, newBucket(nil))
}

func TestReferenceRateLimiter(t *testing.T) {
	conformance.TestRateLimiter(t, limiterSetup{}.build)
}

func TestReferenceHTTPClient(t *testing.T) {
	conformance.TestHTTPClient(t, clientSetup{}.build)
}

// A decorator that changes nothing must pass too (the CDK's rerun through
// a prefixed bucket): the suites may not depend on concrete types.
func TestReferenceThroughDecorators(t *testing.T) {
	t.Run("Bucket", func(t *testing.T) {
		conformance.TestBucket(t, newBucket(func(b protocols.Bucket) protocols.Bucket { return passBucket{b} }))
	})
	t.Run("RateLimiter", func(t *testing.T) {
		conformance.TestRateLimiter(t, limiterSetup{
			bucket: func(b protocols.Bucket) protocols.Bucket { return passBucket{b} },
			wrap:   func(l protocols.RateLimiter) protocols.RateLimiter { return passLimiter{l} },
		}.build)
	})
}

type passBucket struct{ protocols.Bucket }

// Update forwards the optional [protocols.BucketUpdater], as a
// well-behaved decorator forwards the optional interfaces it knows.
func (b passBucket) Update(info protocols.RateLimitInfo) {
	if u, ok := b.Bucket.(protocols.BucketUpdater); ok {
		u.Update(info)
	}
}

type passLimiter struct{ protocols.RateLimiter }

// brokenCases are wrong implementations; each must fail the named
// subtests. They run in a child process (see TestBroken), because a
// failing subtest fails its parent.
var brokenCases = []struct {
	name  string
	suite func(t *testing.T)
	// fail lists the subtests that must fail; skip those that must be
	// skipped; out strings the output must contain.
	fail, skip, out []string
	// parentFails means the suite itself fails, before any subtest.
	parentFails bool
	// only selects the subtests to run; default: fail and skip.
	only []string
}{
	// Buckets.
	{name: "IgnoreRemaining", suite: bucketSuite(broken.IgnoreRemaining),
		fail: []string{"ZeroRemainingBlocksUntilReset", "ConcurrentSafeAcquire"}},
	{name: "TruncateResetAfter", suite: bucketSuite(broken.TruncateResetAfter),
		fail: []string{"ResetAfterIsFractional"}},
	{name: "ResetFromAdmission", suite: bucketSuite(broken.ResetFromAdmission),
		fail: []string{"ResetAfterCountedFromArrival"}},
	{name: "Ignore429", suite: bucketSuite(broken.Ignore429),
		fail: []string{"Shared429PausesBucket"}},
	{name: "CancelLeaks", suite: bucketSuite(broken.CancelLeaks),
		fail: []string{"CancelReleasesSlot"}},
	{name: "IgnoreContext", suite: bucketSuite(broken.IgnoreContext),
		fail: []string{"AcquireHonorsCanceledContext", "AcquireHonorsDeadline"}},
	{name: "LeakOnDeadline", suite: bucketSuite(broken.LeakOnDeadline),
		fail: []string{"FailedAcquireHoldsNothing"}},
	{name: "IgnoreUpdate", suite: bucketSuite(broken.IgnoreUpdate),
		fail: []string{"UpdateTeachesWithoutReleasing"}},
	{name: "LimiterWithForgetfulBuckets", suite: limiterSuite(limiterSetup{bucket: broken.IgnoreUpdate}),
		fail: []string{"SharedHashSharesBucket"}},
	{name: "CloseIgnored", suite: bucketSuite(broken.CloseIgnored),
		fail: []string{"CloseWakesWaiters", "AcquireAfterCloseFails", "CloseIsIdempotent"}},

	// Rate limiters.
	{name: "NoGlobalLimit", suite: limiterSuite(limiterSetup{params: broken.NoGlobalLimit}),
		fail: []string{"GlobalLimitIsProactive"}},
	{name: "IgnoreGlobal429", suite: limiterSuite(limiterSetup{wrap: broken.IgnoreGlobal429}),
		fail: []string{"Global429PausesEveryRoute"}},
	{name: "User429AsGlobal", suite: limiterSuite(limiterSetup{wrap: broken.User429AsGlobal}),
		fail: []string{"User429PausesOnlyItsBucket"}},
	{name: "IgnoreCloudflare", suite: limiterSuite(limiterSetup{wrap: broken.IgnoreCloudflare}),
		fail: []string{"Cloudflare429PausesEveryRoute"}},
	{name: "ForgetHash", suite: limiterSuite(limiterSetup{wrap: broken.ForgetHash}),
		fail: []string{"SharedHashSharesBucket", "KnownTemplateStartsWithKnownLimit"}},
	{name: "CancelKeepsToken", suite: limiterSuite(limiterSetup{wrap: broken.CancelKeepsToken}),
		fail: []string{"CancelReleasesGlobalToken"}},
	{name: "IgnoreExempt", suite: limiterSuite(limiterSetup{wrap: broken.IgnoreExempt}),
		fail: []string{"ExemptRoutesSkipGlobal"}},
	{name: "IgnoreLimiterContext", suite: limiterSuite(limiterSetup{wrap: broken.IgnoreLimiterContext}),
		fail: []string{"AcquireHonorsCanceledContext", "AcquireHonorsDeadline"}},
	{name: "OneAtATime", suite: limiterSuite(limiterSetup{wrap: broken.OneAtATime}),
		fail: []string{"GlobalLimitAllowsFullRate"}},
	{name: "LimiterWithTruncatingBuckets", suite: limiterSuite(limiterSetup{bucket: broken.TruncateResetAfter}),
		fail: []string{"SteadyStreamEarnsNo429"}},
	{name: "LimiterWithLeakyBuckets", suite: limiterSuite(limiterSetup{bucket: broken.CancelLeaks}),
		fail: []string{"FailedAcquireHoldsNothing"}},

	// HTTP clients.
	{name: "DropReason", suite: clientSuite(clientSetup{wrap: broken.DropReason}),
		fail: []string{"AuditLogReasonURLEncoded"}},
	{name: "RetryClientErrors", suite: clientSuite(clientSetup{wrap: broken.RetryClientErrors}),
		fail: []string{"HTTPErrorCarriesFormErrors", "NotFoundNotRetried"}},
	{name: "RetryRateLimitErrors", suite: clientSuite(clientSetup{wrap: broken.RetryRateLimitErrors}),
		fail: []string{"CloudflareHTML429IsTypedError"}},
	{name: "StringErrors", suite: clientSuite(clientSetup{wrap: broken.StringErrors}),
		fail: []string{"HTTPErrorCarriesFormErrors", "Unauthorized401FailsFast", "DoHonorsDeadline", "RetriesExhausted"}},
	{name: "IgnoreClientContext", suite: clientSuite(clientSetup{wrap: broken.IgnoreClientContext}),
		fail: []string{"DoHonorsCanceledContext", "DoHonorsDeadline"}},
	{name: "Amnesiac", suite: clientSuite(clientSetup{amnesiac: true}),
		fail: []string{"Unauthorized401FailsFast", "InvalidRequestBudgetFailsFast", "HeaderLess429sCountAsInvalid"}},
	{name: "ClientIgnoringGlobal429", suite: clientSuite(clientSetup{limiter: limiterSetup{wrap: broken.IgnoreGlobal429}}),
		fail: []string{"Global429PausesEveryRoute"}},
	{name: "ClientIgnoringCloudflare", suite: clientSuite(clientSetup{limiter: limiterSetup{wrap: broken.IgnoreCloudflare}}),
		fail: []string{"Cloudflare429PausesEveryRoute"}},
	{name: "ClientWithoutGlobalLimit", suite: clientSuite(clientSetup{limiter: limiterSetup{params: broken.NoGlobalLimit}}),
		fail: []string{"FiftyBucketsStayUnderGlobalLimit"}},
	{name: "ClientOneAtATime", suite: clientSuite(clientSetup{limiter: limiterSetup{wrap: broken.OneAtATime}}),
		fail: []string{"FiftyBucketsStayUnderGlobalLimit"}},
	{name: "ClientIgnoringExempt", suite: clientSuite(clientSetup{limiter: limiterSetup{wrap: broken.IgnoreExempt}}),
		fail: []string{"ExemptRoutesSkipGlobal"}},
	{name: "ClientForgettingHashes", suite: clientSuite(clientSetup{limiter: limiterSetup{wrap: broken.ForgetHash}}),
		fail: []string{"ConcurrentSafeThousandRequestsNo429"}},
	{name: "ClientWithTruncatingBuckets", suite: clientSuite(clientSetup{limiter: limiterSetup{bucket: broken.TruncateResetAfter}}),
		fail: []string{"OneBucketThroughputNearMinimum"}},

	// Exclusions.
	{name: "ExcludeSkips", suite: func(t *testing.T) {
		conformance.Options{Exclude: map[string]string{"ZeroRemainingBlocksUntilReset": "a known deviation"}}.
			TestBucket(t, newBucket(broken.IgnoreRemaining))
	}, skip: []string{"ZeroRemainingBlocksUntilReset"}, out: []string{"excluded: a known deviation"}},
	{name: "ExcludeTypoFails", suite: func(t *testing.T) {
		conformance.Options{Exclude: map[string]string{"NoSuchSubtest": "a typo"}}.TestBucket(t, newBucket(nil))
	}, parentFails: true, only: []string{"UnknownLimitAdmitsOneAtATime"}, out: []string{"NoSuchSubtest"}},
}

func bucketSuite(wrap func(protocols.Bucket) protocols.Bucket) func(t *testing.T) {
	return func(t *testing.T) { conformance.TestBucket(t, newBucket(wrap)) }
}

func limiterSuite(s limiterSetup) func(t *testing.T) {
	return func(t *testing.T) { conformance.TestRateLimiter(t, s.build) }
}

func clientSuite(s clientSetup) func(t *testing.T) {
	return func(t *testing.T) { conformance.TestHTTPClient(t, s.build) }
}

// brokenEnv names the broken case a child process runs.
const brokenEnv = "CORDKIT_BROKEN"

// TestBroken runs the broken implementation named by $CORDKIT_BROKEN. It
// is skipped unless TestSuiteCatchesBrokenImplementations runs it in a
// child process.
func TestBroken(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("runs only in a child process of TestSuiteCatchesBrokenImplementations")
	}
	for _, c := range brokenCases {
		if c.name == name {
			c.suite(t)
			return
		}
	}
	t.Fatalf("%s=%q names no broken case", brokenEnv, name)
}

// TestSuiteCatchesBrokenImplementations re-runs the test binary once per
// broken implementation and checks that the suite fails exactly where the
// implementation is wrong.
func TestSuiteCatchesBrokenImplementations(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in a child process")
	}
	if testing.Short() {
		t.Skip("re-runs the test binary; skipped in -short mode")
	}
	for _, c := range brokenCases {
		t.Run(c.name, func(t *testing.T) {
			only := c.only
			if only == nil {
				only = append(append([]string(nil), c.fail...), c.skip...)
			}
			cmd := exec.Command(os.Args[0],
				"-test.run=^TestBroken$/^("+strings.Join(only, "|")+")$",
				"-test.count=1", "-test.v", "-test.timeout=5m")
			cmd.Env = append(os.Environ(), brokenEnv+"="+c.name)
			out, err := cmd.CombinedOutput()
			output := string(out)
			wantFail := len(c.fail) > 0 || c.parentFails
			if _, ok := err.(*exec.ExitError); err != nil && !ok {
				t.Fatalf("running the child test binary: %v", err)
			}
			switch {
			case wantFail && err == nil:
				t.Fatalf("broken implementation %s passed the suite, want it to fail; output:\n%s", c.name, output)
			case !wantFail && err != nil:
				t.Fatalf("%s: the child failed, want it to pass; output:\n%s", c.name, output)
			}
			if strings.Contains(output, "panic:") {
				t.Errorf("the suite panicked on broken implementation %s, want plain failures; output:\n%s", c.name, output)
			}
			for _, sub := range c.fail {
				if !regexp.MustCompile(`(?m)^\s*--- FAIL: TestBroken/` + sub + ` `).MatchString(output) {
					t.Errorf("broken implementation %s: subtest %s did not fail, want it to; output:\n%s", c.name, sub, output)
				}
			}
			for _, sub := range c.skip {
				if !regexp.MustCompile(`(?m)^\s*--- SKIP: TestBroken/` + sub + ` `).MatchString(output) {
					t.Errorf("%s: subtest %s was not skipped, want it skipped; output:\n%s", c.name, sub, output)
				}
			}
			for _, s := range c.out {
				if !strings.Contains(output, s) {
					t.Errorf("%s: the output lacks %q; output:\n%s", c.name, s, output)
				}
			}
			if c.parentFails && !regexp.MustCompile(`(?m)^--- FAIL: TestBroken `).MatchString(output) {
				t.Errorf("%s: TestBroken did not fail, want it to; output:\n%s", c.name, output)
			}
		})
	}
}

func BenchmarkReferenceBucket(b *testing.B) {
	conformance.BenchmarkBucket(b, func(*testing.B) protocols.Bucket { return reference.NewBucket() })
}

func BenchmarkReferenceRateLimiter(b *testing.B) {
	conformance.BenchmarkRateLimiter(b, func(b *testing.B, p protocols.RateLimiterParams) protocols.RateLimiter {
		l, err := reference.NewRateLimiter(p)
		if err != nil {
			b.Fatal(err)
		}
		return l
	})
}

func BenchmarkReferenceHTTPClient(b *testing.B) {
	conformance.BenchmarkHTTPClient(b, func(b *testing.B, p protocols.HTTPClientParams) protocols.HTTPClient {
		l, err := reference.NewRateLimiter(protocols.RateLimiterParams{GlobalLimit: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = l.Close() })
		p.RateLimiter = l
		c, err := reference.NewHTTPClient(p)
		if err != nil {
			b.Fatal(err)
		}
		return c
	})
}
