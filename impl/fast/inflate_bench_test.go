package fast_test

import (
	"testing"

	"github.com/cordkit/cordkit/conformance"
	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

// BenchmarkInflater runs conformance.BenchmarkInflater (a session of
// HELLO, READY, three GUILD_CREATEs of up to 230 KB and 300 events; one op
// is one connection) on the fast and the reference inflaters, so that
// benchstat compares them:
//
//	go test -run '^$' -bench Inflater -count 6 ./impl/fast/ | tee /tmp/inflate.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl /tmp/inflate.txt
//
// The reference skips zstd-stream, which it lacks.
func BenchmarkInflater(b *testing.B) {
	impls := []struct {
		name string
		new  protocols.InflaterFunc
	}{
		{"impl=fast", fast.NewInflater},
		{"impl=reference", reference.NewInflater},
	}
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			conformance.BenchmarkInflater(b, func(_ *testing.B, mode protocols.Compression) (protocols.Inflater, error) {
				return impl.new(mode)
			})
		})
	}
}
