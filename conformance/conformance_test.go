package conformance_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cordkit/cordkit/conformance"
	"github.com/cordkit/cordkit/conformance/internal/broken"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/impl/fast"
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
	{name: "TrustLatestResponse", suite: naiveLimiterSuite(broken.TrustLatestResponse),
		fail: []string{"ConcurrentBucketsAdmitUpToRemaining"}},
	{name: "UncountedInFlight", suite: naiveLimiterSuite(broken.UncountedInFlight),
		fail: []string{"ConcurrentBucketsAdmitUpToRemaining"}},

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

	// Inflaters.
	{name: "PerMessageReader", suite: inflaterSuite(broken.PerMessageReader(reference.NewInflater)),
		fail: []string{"ContextSpansMessages"}},
	{name: "IgnorePartialFrames", suite: inflaterSuite(broken.IgnorePartialFrames(reference.NewInflater)),
		fail: []string{"SplitMessageReturnedWhole", "OneByteAtATime", "MarkerSplitAcrossFrames"}},
	{name: "RetainFrames", suite: inflaterSuite(broken.RetainFrames(reference.NewInflater)),
		fail: []string{"FrameNotRetained"}},
	{name: "InflaterIgnoringReset", suite: inflaterSuite(broken.IgnoreReset(reference.NewInflater)),
		fail: []string{"ResetStartsNewStream", "ResetDropsPartialMessage"}},

	// Codecs.
	{name: "DecodesD", suite: codecSuite(broken.DecodesD(reference.Codec{})),
		fail: []string{"EnvelopeLeavesDRaw"}},
	{name: "StaleEnvelope", suite: codecSuite(broken.StaleEnvelope(reference.Codec{})),
		fail: []string{"NullOrAbsentSeqIsZero", "NullOrAbsentNameIsEmpty", "MissingDIsNil"}},
	{name: "NewlineAppend", suite: codecSuite(broken.NewlineAppend(reference.Codec{})),
		fail: []string{"AppendMarshalEqualsMarshal"}},
	{name: "PanicsOnEmpty", suite: codecSuite(broken.PanicsOnEmpty(reference.Codec{})),
		fail: []string{"MalformedJSONIsError"}},

	// Dispatchers.
	{name: "ReverseOrder", suite: dispatcherSuite(broken.ReverseOrder),
		fail: []string{"HandlersRunInOrder"}},
	{name: "WaitForSharesData", suite: dispatcherSuite(broken.WaitForSharesData),
		fail: []string{"WaitForDataIsCopy"}},
	{name: "NamesOnly", suite: dispatcherSuite(broken.NamesOnly),
		fail: []string{"OpcodeNamesListen"}},
	{name: "IgnoreRemove", suite: dispatcherSuite(func() protocols.Dispatcher { return broken.IgnoreRemove(reference.NewDispatcher()) }),
		fail: []string{"RemoveStopsDelivery", "RemoveDuringDispatch"}},
	{name: "DispatchAsync", suite: dispatcherSuite(func() protocols.Dispatcher { return broken.DispatchAsync(reference.NewDispatcher()) }),
		fail: []string{"DispatchReturnsAfterHandlers"}},

	// Heartbeaters.
	{name: "Unjittered", suite: keepAliveSuite(broken.Unjittered),
		fail: []string{"FirstBeatJittered"}},
	{name: "NeverZombie", suite: keepAliveSuite(func() protocols.KeepAlive { return broken.NeverZombie(reference.NewKeepAlive()) }),
		fail: []string{"ZombieWhenAckMissed"}},
	{name: "AckWaitsForBeat", suite: keepAliveSuite(func() protocols.KeepAlive { return broken.AckWaitsForBeat(reference.NewKeepAlive()) }),
		fail: []string{"AckReturnsAtOnce"}},

	// Identify limiters.
	{name: "OneBucket", suite: identifySuite(nil, broken.OneBucket),
		fail: []string{"DifferentBucketsConcurrent", "BucketsKeyedByShardModulo", "SixteenShardsFourBuckets"}},
	{name: "NeverWaits", suite: identifySuite(nil, func(protocols.IdentifyLimiter) protocols.IdentifyLimiter { return broken.NeverWaits() }),
		fail: []string{"OneIdentifyPerFiveSeconds", "SameShardAgainWaits", "SixteenShardsFourBuckets"}},
	{name: "IgnoreSessionBudget", suite: identifySuite(broken.IgnoreSessionBudget, nil),
		fail: []string{"SessionBudgetWaitsForReset", "SessionBudgetFailsPastDeadline", "SessionBudgetSpansBuckets"}},

	// Send limiters.
	{name: "NeverCounts", suite: sendSuite(broken.NeverCounts),
		fail: []string{"NoMoreThan120PerMinute", "NonHeartbeatsLeaveRoom"}},
	{name: "HeartbeatsWait", suite: sendSuite(func() protocols.SendLimiter { return broken.HeartbeatsWait(reference.NewSendLimiter()) }),
		fail: []string{"HeartbeatsFindRoom"}},
	{name: "SendLimiterIgnoringReset", suite: sendSuite(func() protocols.SendLimiter { return broken.IgnoreSendReset(reference.NewSendLimiter()) }),
		fail: []string{"ResetForgetsSent"}},

	// Session stores.
	{name: "IgnoreCount", suite: sessionSuite(func() protocols.SessionStore { return broken.IgnoreCount(reference.NewSessionStore()) }),
		fail: []string{"ShardCountIsPartOfKey"}},
	{name: "ZeroForMissing", suite: sessionSuite(func() protocols.SessionStore { return broken.ZeroForMissing(reference.NewSessionStore()) }),
		fail: []string{"LoadMissingIsErrNoSession", "DeleteForgets"}},

	// Shards: broken connections, parts and decorators.
	{name: "CloseWith1000", suite: shardSuite(shardSetup{params: withDialer(broken.CloseWith1000)}),
		fail: []string{"ZombieClosesWithoutInvalidating", "ReconnectOpResumes", "InvalidSessionResumable", "CorruptPayloadResumes", "CloseEndsSessionOnlyFor1000"}},
	{name: "PinURL", suite: shardSuite(shardSetup{params: func(p *protocols.ShardParams) { p.Dialer = broken.PinURL(p.Dialer, p.URL) }}),
		fail: []string{"ResumeUsesResumeURL"}},
	{name: "StickyResumeURL", suite: shardSuite(shardSetup{params: withDialer(broken.StickyResumeURL)}),
		fail: []string{"ResumeFallsBackToMainURL"}},
	{name: "BotPrefixInIdentify", suite: shardSuite(shardSetup{params: withDialer(broken.BotPrefixInIdentify)}),
		fail: []string{"HelloIdentifyReady"}},
	{name: "NoPayloadCompression", suite: shardSuite(shardSetup{params: withDialer(broken.NoPayloadCompression)}),
		fail: []string{"PayloadCompression"}},
	{name: "ZeroSeqHeartbeat", suite: shardSuite(shardSetup{params: withDialer(broken.ZeroSeqHeartbeat)}),
		fail: []string{"HeartbeatNullBeforeFirstDispatch"}},
	{name: "IgnoreServerHeartbeat", suite: shardSuite(shardSetup{params: withDialer(broken.IgnoreServerHeartbeat)}),
		fail: []string{"ServerHeartbeatAnsweredAtOnce"}},
	{name: "IgnoreReconnect", suite: shardSuite(shardSetup{params: withDialer(broken.IgnoreReconnect)}),
		fail: []string{"ReconnectOpResumes", "ReconnectRightAfterReady", "ReconnectBeforeHello"}},
	{name: "InvalidSessionNeverResumable", suite: shardSuite(shardSetup{params: withDialer(broken.InvalidSessionNeverResumable)}),
		fail: []string{"InvalidSessionResumable"}},
	{name: "ResumeSeqAhead", suite: shardSuite(shardSetup{params: withDialer(broken.ResumeSeqAhead)}),
		fail: []string{"NoEventLostOrDuplicated", "ResumeAfterRestart"}},
	{name: "ForgetCloseCodes", suite: shardSuite(shardSetup{params: withDialer(broken.ForgetCloseCodes)}),
		fail: []string{"CloseCodesFatal", "CloseCodesIdentify"}},
	{name: "AllClosesFatal", suite: shardSuite(shardSetup{params: withDialer(broken.AllClosesFatal)}),
		fail: []string{"CloseCodesResume"}},
	{name: "ShardWithUnjitteredKeepAlive", suite: shardSuite(shardSetup{params: func(p *protocols.ShardParams) { p.KeepAlive = broken.Unjittered() }}),
		fail: []string{"FirstHeartbeatJittered"}},
	{name: "ShardWithSelfAckingKeepAlive", suite: shardSuite(shardSetup{params: func(p *protocols.ShardParams) { p.KeepAlive = broken.NeverZombie(reference.NewKeepAlive()) }}),
		fail: []string{"ZombieClosesWithoutInvalidating"}},
	{name: "ShardWithoutIdentifyLimit", suite: shardSuite(shardSetup{params: func(p *protocols.ShardParams) { p.IdentifyLimiter = broken.NeverWaits() }}),
		fail: []string{"NoIdentifyStormOnInvalidSession"}},
	{name: "ShardWithoutSendLimit", suite: shardSuite(shardSetup{params: func(p *protocols.ShardParams) { p.SendLimiter = broken.NeverCounts() }}),
		fail: []string{"SendLimitNeverExceeded"}},
	{name: "ShardKeepsInflateContext", suite: shardSuite(shardSetup{params: func(p *protocols.ShardParams) { p.NewInflater = broken.IgnoreReset(reference.NewInflater) }}),
		fail: []string{"InflaterResetOnReconnect"}},
	{name: "ShardIgnoresPartialFrames", suite: shardSuite(shardSetup{params: func(p *protocols.ShardParams) { p.NewInflater = broken.IgnorePartialFrames(reference.NewInflater) }}),
		fail: []string{"ZlibStreamSplitFrames"}},
	{name: "ReaderWaitsForHandlers", suite: shardSuite(shardSetup{opts: reference.ShardOptions{MaxQueuedBytes: 1}}),
		fail: []string{"AcksNotStarvedBehindBurst"}},
	{name: "NoWaitAfterInvalidSession", suite: shardSuite(shardSetup{opts: reference.ShardOptions{InvalidSessionWaitMin: time.Nanosecond, InvalidSessionWaitMax: time.Nanosecond}}),
		fail: []string{"InvalidSessionWaitsThenIdentifies", "InvalidSessionAfterResumeIdentifies"}},
	{name: "GiveUpOnDialError", suite: shardSuite(shardSetup{params: broken.GiveUpOnDialError}),
		fail: []string{"DialFailuresRetried"}},
	{name: "IgnoreShouldReconnect", suite: shardSuite(shardSetup{params: broken.IgnoreShouldReconnect}),
		fail: []string{"ShouldReconnectConsulted"}},
	{name: "LongHandshake", suite: shardSuite(shardSetup{params: broken.LongHandshake}),
		fail: []string{"HandshakeTimeoutBoundsDial"}},
	{name: "LogsToken", suite: shardSuite(shardSetup{params: broken.LogsToken}),
		fail: []string{"TokenNotInErrorsOrLogs"}},
	{name: "ForgetfulSessions", suite: shardSuite(shardSetup{params: broken.ForgetfulSessions}),
		fail: []string{"ResumeAfterRestart"}},
	{name: "RawDispatchesOnly", suite: shardSuite(shardSetup{params: broken.RawDispatchesOnly}),
		fail: []string{"RawSeesEveryPayload"}},
	{name: "NoShardID", suite: shardSuite(shardSetup{params: broken.NoShardID}),
		fail: []string{"EventsCarryShardAndSeq"}},
	{name: "CloseWaitsForHandlers", suite: func(t *testing.T) {
		conformance.TestShard(t, func(t *testing.T, p protocols.ShardParams) protocols.Shard {
			wrap := broken.CloseWaitsForHandlers(&p)
			return wrap(shardSetup{}.build(t, p))
		})
	}, fail: []string{"CloseFromHandler"}},
	{name: "CloseAlwaysNormal", suite: shardSuite(shardSetup{wrap: broken.CloseAlwaysNormal}),
		fail: []string{"CloseEndsSessionOnlyFor1000"}},
	{name: "RunIgnoresContext", suite: shardSuite(shardSetup{wrap: broken.RunIgnoresContext}),
		fail: []string{"RunHonorsContext"}},
	{name: "RunOutlivesClose", suite: shardSuite(shardSetup{wrap: broken.RunOutlivesClose}),
		fail: []string{"CloseIsIdempotentAndEndsRun"}},
	{name: "ShardForgetsClosed", suite: shardSuite(shardSetup{wrap: broken.ForgetsClosed}),
		fail: []string{"MethodsAfterCloseFail"}},
	{name: "ReadyOnce", suite: shardSuite(shardSetup{wrap: broken.ReadyOnce}),
		fail: []string{"ReadyCalledEachTime"}},
	{name: "StickyReady", suite: shardSuite(shardSetup{wrap: broken.StickyReady}),
		fail: []string{"StatusReadyTracksConnection"}},
	{name: "RetryFatal", suite: shardSuite(shardSetup{wrap: broken.RetryFatal}),
		fail: []string{"CloseCodesFatal"}},

	// Gateways.
	{name: "GatewayWithoutIdentifyLimit", suite: gatewaySuite(gatewaySetup{params: func(p *protocols.GatewayParams) {
		p.NewIdentifyLimiter = func(protocols.IdentifyLimiterParams) (protocols.IdentifyLimiter, error) {
			return broken.NeverWaits(), nil
		}
	}}), fail: []string{"IdentifySpacingPerBucket", "ReconnectIdentifiesRespectBuckets"}},
	{name: "FirstIdentifyOnly", suite: gatewaySuite(gatewaySetup{params: func(p *protocols.GatewayParams) {
		p.NewIdentifyLimiter = func(ip protocols.IdentifyLimiterParams) (protocols.IdentifyLimiter, error) {
			l, err := reference.NewIdentifyLimiter(ip)
			if err != nil {
				return nil, err
			}
			return broken.FirstIdentifyOnly(l), nil
		}
	}}), fail: []string{"ReconnectIdentifiesRespectBuckets"}},
	{name: "ConnectReturnsEarly", suite: gatewaySuite(gatewaySetup{wrap: broken.ConnectReturnsEarly}),
		fail: []string{"ConnectReadiesEveryShard"}},
	{name: "IgnoreShardIDs", suite: gatewaySuite(gatewaySetup{params: broken.IgnoreShardIDs}),
		fail: []string{"ShardIDsSubset"}},
	{name: "PinShardCount", suite: gatewaySuite(gatewaySetup{params: broken.PinShardCount}),
		fail: []string{"ShardCountFromGatewayBot"}},
	{name: "GatewayOfRetryingShards", suite: gatewaySuite(gatewaySetup{shard: shardSetup{wrap: broken.RetryFatal}}),
		fail: []string{"ShardingRequiredRescalesWhenAutomatic", "ShardingRequiredFatalWhenPinned", "FatalErrorFromConnect"}},
	{name: "RescaleNoop", suite: gatewaySuite(gatewaySetup{wrap: broken.RescaleNoop}),
		fail: []string{"RescaleWithoutLosingEvents"}},
	{name: "ConnectIgnoresContext", suite: gatewaySuite(gatewaySetup{wrap: broken.ConnectIgnoresContext}),
		fail: []string{"ConnectHonorsContext"}},
	{name: "CloseLeavesShards", suite: gatewaySuite(gatewaySetup{wrap: broken.CloseLeavesShards}),
		fail: []string{"CloseEndsEveryGoroutine"}},
	{name: "GatewayForgetsClosed", suite: gatewaySuite(gatewaySetup{wrap: broken.GatewayForgetsClosed}),
		fail: []string{"MethodsAfterCloseFail"}},

	// Exclusions.
	{name: "ExcludeGatewaySkips", suite: func(t *testing.T) {
		conformance.Options{Exclude: map[string]string{"ContextSpansMessages": "a known deviation"}}.
			TestInflater(t, inflaterFactory(broken.PerMessageReader(reference.NewInflater)))
	}, skip: []string{"ContextSpansMessages"}, out: []string{"excluded: a known deviation"}},
	{name: "ExcludeGatewayTypoFails", suite: func(t *testing.T) {
		conformance.Options{Exclude: map[string]string{"NoSuchGatewaySubtest": "a typo"}}.
			TestKeepAlive(t, func(*testing.T) protocols.KeepAlive { return reference.NewKeepAlive() })
	}, parentFails: true, only: []string{"BeatNowBeatsAtOnce"}, out: []string{"NoSuchGatewaySubtest"}},
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

// Gateway leaf suites.

func inflaterFactory(f protocols.InflaterFunc) func(*testing.T, protocols.Compression) (protocols.Inflater, error) {
	return func(_ *testing.T, mode protocols.Compression) (protocols.Inflater, error) { return f(mode) }
}

func inflaterSuite(f protocols.InflaterFunc) func(t *testing.T) {
	return func(t *testing.T) { conformance.TestInflater(t, inflaterFactory(f)) }
}

func codecSuite(c protocols.Codec) func(t *testing.T) {
	return func(t *testing.T) { conformance.TestCodec(t, func(*testing.T) protocols.Codec { return c }) }
}

func dispatcherSuite(newDispatcher func() protocols.Dispatcher) func(t *testing.T) {
	return func(t *testing.T) {
		conformance.TestDispatcher(t, func(*testing.T) protocols.Dispatcher { return newDispatcher() })
	}
}

func keepAliveSuite(newKeepAlive func() protocols.KeepAlive) func(t *testing.T) {
	return func(t *testing.T) {
		conformance.TestKeepAlive(t, func(*testing.T) protocols.KeepAlive { return newKeepAlive() })
	}
}

// identifySetup builds the reference IdentifyLimiter, with the params
// rewritten and the limiter wrapped when those are set.
func identifySetup(params func(protocols.IdentifyLimiterParams) protocols.IdentifyLimiterParams, wrap func(protocols.IdentifyLimiter) protocols.IdentifyLimiter) func(*testing.T, protocols.IdentifyLimiterParams) protocols.IdentifyLimiter {
	return func(t *testing.T, p protocols.IdentifyLimiterParams) protocols.IdentifyLimiter {
		t.Helper()
		if params != nil {
			p = params(p)
		}
		l, err := reference.NewIdentifyLimiter(p)
		if err != nil {
			t.Fatalf("reference.NewIdentifyLimiter: %v", err)
		}
		if wrap != nil {
			l = wrap(l)
		}
		return l
	}
}

func naiveLimiterSuite(newLimiter func() protocols.RateLimiter) func(t *testing.T) {
	return func(t *testing.T) {
		conformance.TestRateLimiter(t, func(*testing.T, protocols.RateLimiterParams) protocols.RateLimiter { return newLimiter() })
	}
}

func identifySuite(params func(protocols.IdentifyLimiterParams) protocols.IdentifyLimiterParams, wrap func(protocols.IdentifyLimiter) protocols.IdentifyLimiter) func(t *testing.T) {
	return func(t *testing.T) { conformance.TestIdentifyLimiter(t, identifySetup(params, wrap)) }
}

func sendSuite(newLimiter func() protocols.SendLimiter) func(t *testing.T) {
	return func(t *testing.T) {
		conformance.TestSendLimiter(t, func(*testing.T) protocols.SendLimiter { return newLimiter() })
	}
}

func sessionSuite(newStore func() protocols.SessionStore) func(t *testing.T) {
	return func(t *testing.T) {
		conformance.TestSessionStore(t, func(*testing.T) protocols.SessionStore { return newStore() })
	}
}

func TestReferenceInflater(t *testing.T) {
	conformance.TestInflater(t, inflaterFactory(reference.NewInflater))
}

// The fast inflaters add zstd-stream, which the reference lacks: the
// ZstdStream subtests run here and are skipped for the reference.
func TestFastInflater(t *testing.T) {
	conformance.TestInflater(t, inflaterFactory(fast.NewInflater))
}

func TestReferenceCodec(t *testing.T) {
	conformance.TestCodec(t, func(*testing.T) protocols.Codec { return reference.Codec{} })
}

func TestFastCodec(t *testing.T) {
	conformance.TestCodec(t, func(*testing.T) protocols.Codec { return fast.Codec{} })
}

// The fast TypeSheet sets only the parts impl/fast improves; Run skips the
// others.
func TestFastTypeSheet(t *testing.T) {
	conformance.Run(t, fast.TypeSheet())
}

// The fast limiter runs the whole RateLimiter suite, and the HTTPClient
// suite (through Run, with the reference client) on top of it, with and
// without its InFlight mode; ConcurrentBucketsAdmitUpToRemaining is
// skipped without it.
func TestFastRateLimiter(t *testing.T) {
	for _, o := range []fast.RateLimiterOptions{{}, {InFlight: true}} {
		t.Run(fmt.Sprintf("InFlight=%v", o.InFlight), func(t *testing.T) {
			conformance.Run(t, protocols.TypeSheet{NewRateLimiter: o.New, NewHTTPClient: reference.NewHTTPClient})
		})
	}
}

func TestReferenceDispatcher(t *testing.T) {
	conformance.TestDispatcher(t, func(*testing.T) protocols.Dispatcher { return reference.NewDispatcher() })
}

func TestFastDispatcher(t *testing.T) {
	conformance.TestDispatcher(t, func(*testing.T) protocols.Dispatcher { return fast.NewDispatcher() })
}

func TestReferenceKeepAlive(t *testing.T) {
	conformance.TestKeepAlive(t, func(*testing.T) protocols.KeepAlive { return reference.NewKeepAlive() })
}

func TestReferenceIdentifyLimiter(t *testing.T) {
	conformance.TestIdentifyLimiter(t, identifySetup(nil, nil))
}

func TestReferenceSendLimiter(t *testing.T) {
	conformance.TestSendLimiter(t, func(*testing.T) protocols.SendLimiter { return reference.NewSendLimiter() })
}

func TestReferenceSessionStore(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		conformance.TestSessionStore(t, func(*testing.T) protocols.SessionStore { return reference.NewSessionStore() })
	})
	t.Run("File", func(t *testing.T) {
		conformance.TestSessionStore(t, func(t *testing.T) protocols.SessionStore {
			s, err := reference.NewFileSessionStore(filepath.Join(t.TempDir(), "sessions.json"))
			if err != nil {
				t.Fatalf("reference.NewFileSessionStore: %v", err)
			}
			return s
		})
	})
}

// Legal but weird implementations must pass too (fstest's shuffledFS): the
// suites may rely only on what the contracts promise.
func TestReferenceLegalButWeird(t *testing.T) {
	t.Run("ScribblingInflater", func(t *testing.T) {
		conformance.TestInflater(t, func(_ *testing.T, mode protocols.Compression) (protocols.Inflater, error) {
			in, err := reference.NewInflater(mode)
			if err != nil {
				return nil, err
			}
			return &scribblingInflater{next: in}, nil
		})
	})
	t.Run("AliasingCodec", func(t *testing.T) {
		conformance.TestCodec(t, func(*testing.T) protocols.Codec { return aliasingCodec{reference.Codec{}} })
	})
	t.Run("AppendingCodec", func(t *testing.T) {
		conformance.TestCodec(t, func(*testing.T) protocols.Codec { return appendingCodec{reference.Codec{}} })
	})
}

// scribblingInflater returns each message in a buffer of its own, which it
// overwrites at the next call: "valid until the next call" and no longer.
type scribblingInflater struct {
	next  protocols.Inflater
	out   []byte
	fresh bool // out holds a message not yet overwritten
}

func (s *scribblingInflater) scribble() {
	if s.fresh {
		for i := range s.out {
			s.out[i] = 0xEE
		}
		s.fresh = false
	}
}

func (s *scribblingInflater) Inflate(frame []byte) ([]byte, bool, error) {
	s.scribble()
	msg, done, err := s.next.Inflate(frame)
	if !done || err != nil {
		return nil, done, err
	}
	s.out, s.fresh = append(s.out[:0], msg...), true
	return s.out, true, nil
}

func (s *scribblingInflater) Reset() {
	s.scribble()
	s.next.Reset()
}

// aliasingCodec returns an env.D that aliases data, as the contract allows.
type aliasingCodec struct{ protocols.Codec }

func (c aliasingCodec) DecodeEnvelope(data []byte, env *protocols.Envelope) error {
	if err := c.Codec.DecodeEnvelope(data, env); err != nil {
		return err
	}
	if i := bytes.Index(data, env.D); env.D != nil && i >= 0 {
		env.D = data[i : i+len(env.D) : i+len(env.D)]
	}
	return nil
}

// appendingCodec has the optional AppendMarshaler, done right.
type appendingCodec struct{ protocols.Codec }

func (c appendingCodec) AppendMarshal(dst []byte, v any) ([]byte, error) {
	b, err := c.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// The Check functions are plain functions: wrong implementations give
// errors that name the failing case.
func TestCheckFunctions(t *testing.T) {
	// Example_checkCodec and Example_checkInflater check the reference.
	for _, c := range []struct {
		name string
		err  error
		want []string
	}{
		{"CheckCodec(DecodesD)", conformance.CheckCodec(broken.DecodesD(reference.Codec{})), []string{"EnvelopeLeavesDRaw: ", "rule: "}},
		{"CheckCodec(PanicsOnEmpty)", conformance.CheckCodec(broken.PanicsOnEmpty(reference.Codec{})), []string{"MalformedJSONIsError: ", "panicked"}},
		{"CheckCodec(nil)", conformance.CheckCodec(nil), nil},
		{"CheckInflater(PerMessageReader)", conformance.CheckInflater(broken.PerMessageReader(reference.NewInflater)), []string{"ContextSpansMessages: "}},
		{"CheckInflater(IgnorePartialFrames)", conformance.CheckInflater(broken.IgnorePartialFrames(reference.NewInflater)), []string{"OneByteAtATime: "}},
	} {
		if c.err == nil {
			t.Errorf("%s: got nil, want an error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(c.err.Error(), w) {
				t.Errorf("%s: the error lacks %q:\n%v", c.name, w, c.err)
			}
		}
	}
	// A mode the implementation lacks is skipped, not failed.
	zlibOnly := func(mode protocols.Compression) (protocols.Inflater, error) {
		if mode != protocols.CompressZlibStream {
			return nil, protocols.ErrNotSupported
		}
		return reference.NewInflater(mode)
	}
	if err := conformance.CheckInflater(zlibOnly); err != nil {
		t.Errorf("CheckInflater(zlib-stream only): %v", err)
	}
}

// CheckCodec needs no *testing.T, so an example can run it.
func Example_checkCodec() {
	if err := conformance.CheckCodec(reference.Codec{}); err != nil {
		fmt.Println(err)
	}
	// Output:
}

// CheckInflater takes the shape of TypeSheet.NewInflater.
func Example_checkInflater() {
	if err := conformance.CheckInflater(reference.NewInflater); err != nil {
		fmt.Println(err)
	}
	// Output:
}

// The adversarial frames are exported for an implementation's own tests
// and fuzz targets.
func ExampleSplitFrames() {
	msgs := [][]byte{
		[]byte(`{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}`),
		[]byte(`{"t":null,"s":null,"op":11,"d":null}`),
	}
	frames := conformance.SplitFrames(conformance.ZlibStream(msgs), rand.New(rand.NewPCG(1, 2)))
	in, err := reference.NewInflater(protocols.CompressZlibStream)
	if err != nil {
		panic(err)
	}
	got, err := conformance.InflateFrames(in, frames)
	fmt.Println(len(frames) > len(msgs), err)
	for _, m := range got {
		fmt.Println(string(m))
	}
	// Output:
	// true <nil>
	// {"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}
	// {"t":null,"s":null,"op":11,"d":null}
}

func BenchmarkReferenceInflater(b *testing.B) {
	conformance.BenchmarkInflater(b, func(_ *testing.B, mode protocols.Compression) (protocols.Inflater, error) {
		return reference.NewInflater(mode)
	})
}

func BenchmarkReferenceCodec(b *testing.B) {
	conformance.BenchmarkCodec(b, func(*testing.B) protocols.Codec { return reference.Codec{} })
}

func BenchmarkFastCodec(b *testing.B) {
	conformance.BenchmarkCodec(b, func(*testing.B) protocols.Codec { return fast.Codec{} })
}

// Shards and gateways.

// shardSetup builds a reference shard with reference parts, changed by
// params and wrapped by wrap when those are set.
type shardSetup struct {
	opts   reference.ShardOptions
	params func(p *protocols.ShardParams)
	wrap   func(protocols.Shard) protocols.Shard
}

func (s shardSetup) build(t *testing.T, p protocols.ShardParams) protocols.Shard {
	t.Helper()
	p.Codec = reference.Codec{}
	p.NewInflater = reference.NewInflater
	p.KeepAlive = reference.NewKeepAlive()
	p.SendLimiter = reference.NewSendLimiter()
	l, err := reference.NewIdentifyLimiter(protocols.IdentifyLimiterParams{MaxConcurrency: 1})
	if err != nil {
		t.Fatalf("reference.NewIdentifyLimiter: %v", err)
	}
	p.IdentifyLimiter = l
	if s.params != nil {
		s.params(&p)
	}
	sh, err := s.opts.New(p)
	if err != nil {
		t.Fatalf("reference.NewShard: %v", err)
	}
	if s.wrap != nil {
		sh = s.wrap(sh)
	}
	return sh
}

// withDialer wraps the suite's Dialer.
func withDialer(wrap func(protocols.Dialer) protocols.Dialer) func(p *protocols.ShardParams) {
	return func(p *protocols.ShardParams) { p.Dialer = wrap(p.Dialer) }
}

func shardSuite(s shardSetup) func(t *testing.T) {
	return func(t *testing.T) { conformance.TestShard(t, s.build) }
}

func TestReferenceShard(t *testing.T) {
	conformance.TestShard(t, shardSetup{}.build)
}

// fastParts runs the gateway suites the way impl/fast's parts need:
// zstd-stream cases on, and connections through a fast.Dialer.
var fastParts = conformance.Options{ZstdStream: true, NewDialer: func(nd func(ctx context.Context, network, addr string) (net.Conn, error)) protocols.Dialer {
	return &fast.Dialer{NetDial: nd}
}}

// gatewaySetup builds a reference gateway of reference shards and parts,
// changed by params and wrapped by wrap when those are set; shard wraps
// each shard.
type gatewaySetup struct {
	opts   reference.GatewayOptions
	shard  shardSetup
	params func(p *protocols.GatewayParams)
	wrap   func(protocols.Gateway) protocols.Gateway
}

func (s gatewaySetup) build(t *testing.T, p protocols.GatewayParams) protocols.Gateway {
	t.Helper()
	p.NewShard = func(sp protocols.ShardParams) (protocols.Shard, error) {
		if s.shard.params != nil {
			s.shard.params(&sp)
		}
		sh, err := s.shard.opts.New(sp)
		if err != nil || s.shard.wrap == nil {
			return sh, err
		}
		return s.shard.wrap(sh), nil
	}
	p.NewKeepAlive = reference.NewKeepAlive
	p.NewSendLimiter = reference.NewSendLimiter
	p.NewIdentifyLimiter = reference.NewIdentifyLimiter
	p.Shard.Codec = reference.Codec{}
	p.Shard.NewInflater = reference.NewInflater
	if s.params != nil {
		s.params(&p)
	}
	g, err := s.opts.New(p)
	if err != nil {
		t.Fatalf("reference.NewGateway: %v", err)
	}
	if s.wrap != nil {
		g = s.wrap(g)
	}
	return g
}

func gatewaySuite(s gatewaySetup) func(t *testing.T) {
	return func(t *testing.T) { conformance.TestGateway(t, s.build) }
}

func TestReferenceGateway(t *testing.T) {
	conformance.TestGateway(t, gatewaySetup{}.build)
}

// Run runs the suite of each part a TypeSheet sets and skips the others.
func TestRunTypeSheet(t *testing.T) {
	t.Run("Empty", func(t *testing.T) { conformance.Run(t, protocols.TypeSheet{}) })
	t.Run("CodecAndStore", func(t *testing.T) {
		conformance.Run(t, protocols.TypeSheet{Codec: reference.Codec{}, SessionStore: reference.NewSessionStore()})
	})
}

// TestFastShardParts runs the shard suite on the reference shard built
// from impl/fast's parts (fast.TypeSheet leaves NewShard to the
// reference): its codec and inflater, over fast.Dialer connections,
// zstd-stream cases included.
func TestFastShardParts(t *testing.T) {
	fastParts.TestShard(t, shardSetup{params: func(p *protocols.ShardParams) {
		p.Codec = fast.Codec{}
		p.NewInflater = fast.NewInflater
	}}.build)
}

// TestFastGatewayParts runs the gateway suite on the reference gateway
// and shards built from impl/fast's parts, over fast.Dialer connections.
func TestFastGatewayParts(t *testing.T) {
	fastParts.TestGateway(t, gatewaySetup{params: func(p *protocols.GatewayParams) {
		p.Shard.Codec = fast.Codec{}
		p.Shard.NewInflater = fast.NewInflater
	}}.build)
}
