package redis_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// limiter's pub/sub listener must end with Close, and go-redis clients must
// be closed by the tests that made them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// internal/redistest waits for each redis-server it started until
		// the test's cleanup kills it.
		goleak.IgnoreAnyFunction("os/exec.(*Cmd).Wait"),
		goleak.IgnoreAnyFunction("github.com/cordkit/cordkit/internal/redistest.(*Server).start.func1"),
	)
}
