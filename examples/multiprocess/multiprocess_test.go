package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/internal/redistest"
)

// workerArgsEnv makes the test binary a worker: it holds the worker's
// flags as a JSON array. The test re-executes its own binary with it, so
// the workers run the code under test, under -race, with no build step.
const workerArgsEnv = "CORDKIT_MULTIPROCESS_WORKER_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(workerArgsEnv); args != "" {
		var a []string
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			fmt.Fprintln(os.Stderr, "multiprocess worker:", err)
			os.Exit(2)
		}
		os.Exit(cliMain(a, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// testWorker runs a worker with args: this test binary again, told by
// workerArgsEnv to run cliMain instead of the tests.
func testWorker(ctx context.Context, args []string) *exec.Cmd {
	b, err := json.Marshal(args)
	if err != nil {
		panic(err) // a []string always encodes
	}
	cmd := reexec(ctx, []string{"-test.run=^$"})
	cmd.Env = append(os.Environ(), workerArgsEnv+"="+string(b))
	return cmd
}

// TestMultiprocess runs a 24-shard bot with max_concurrency 4 in three OS
// processes, 8 shards each, sharing one redis-server, against one mock
// Discord in this process; each process also posts 150 messages over REST.
// The mock's observations must show:
//
//   - identify spacing per bucket held across processes: 24 IDENTIFYs, all
//     accepted, consecutive ones of a bucket (shard_id % 4) at least the
//     mock's interval apart (5 s less 100 ms for the dial and HELLO
//     between the limiter's grant and the IDENTIFY; see
//     mockIdentifyInterval), some of those pairs from different
//     processes;
//   - no 429 of user or global scope, and no ban;
//   - after worker 1 is killed with SIGKILL and started again, its 8
//     shards RESUME (8 accepted RESUMEs, no IDENTIFY);
//   - no event lost: numbered events sent to every shard before the kill,
//     while the worker is dead and after it is back are all handled.
//
// Set CORDKIT_MULTIPROCESS_INMEMORY=limiters to give each process its own
// in-memory rate and identify limiters (the reference ones): the test must
// then fail.
func TestMultiprocess(t *testing.T) {
	if testing.Short() {
		t.Skip("about 40 seconds of identify spacing")
	}
	if mode := inMemory(); mode != "" {
		t.Logf("%s=%s: the workers use in-memory parts; this test is expected to fail", InMemoryEnv, mode)
	}
	const processes, shards, maxConcurrency, probes, rest = 3, 24, 4, 3, 150
	rs := redistest.Start(t)
	srv := mockdiscord.New(mockOptions(shards, maxConcurrency))
	require.NoError(t, srv.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = srv.Close() })

	sc := &scenario{
		Processes: processes, Shards: shards, MaxConcurrency: maxConcurrency,
		Probes: probes, REST: rest, RESTConcurrency: 16, Kill: true,
		Redis: rs.Addr, Mock: newControl(srv.APIBase()), IdentifyInterval: mockIdentifyInterval,
		Command: testWorker, Log: t.Output(),
		WorkerStderr: func(i int) io.Writer {
			return &prefixWriter{prefix: fmt.Sprintf("worker %d log: ", i), w: t.Output()}
		},
	}
	t.Cleanup(sc.KillAll) // Run kills them too; this covers a panic
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	sum, err := sc.Run(ctx)
	var text strings.Builder
	sum.Write(&text)
	t.Log(text.String())
	require.NoError(t, err, "the scenario did not finish")

	owners := map[int]int{}
	for i := range processes {
		got, err := shardsForProcess(i, processes, shards, maxConcurrency)
		require.NoError(t, err)
		require.Len(t, got, shards/processes, "ShardsForProcess(%d)", i)
		for _, s := range got {
			_, dup := owners[s]
			require.False(t, dup, "shard %d given to two processes", s)
			owners[s] = i
		}
	}
	owner := func(shard int) int { return owners[shard] }
	t.Run("IdentifySpacingHeldAcrossProcesses", func(t *testing.T) {
		r := analyzeIdentifies(srv.GatewayObservations(), owner)
		none(t, r.Rejected, "IDENTIFYs the mock rejected")
		assert.Equal(t, shards, r.Accepted, "accepted IDENTIFYs: one per shard, none after the restart")
		none(t, r.TooClose(mockIdentifyInterval), "IDENTIFYs of one bucket closer than the mock's interval")
		assert.Len(t, r.Buckets, maxConcurrency)
		// Each bucket holds shards of all three processes; pairs of
		// consecutive IDENTIFYs from different processes are the ones
		// only a shared limiter spaces.
		assert.Positive(t, r.CrossProcess, "consecutive IDENTIFYs of a bucket from different processes")
		for b, gap := range r.MinGap {
			t.Logf("bucket %d: %d IDENTIFYs, min gap %v", b, len(r.Buckets[b]), gap.Round(time.Millisecond))
		}
		none(t, srv.GatewayViolations(), "gateway violations")
	})
	t.Run("NoRateLimitHit", func(t *testing.T) {
		none(t, srv.WindowViolations(), "429s of user or global scope, or bans")
		assert.Zero(t, srv.Count(http.StatusTooManyRequests), "429s of any scope")
		r := analyzeREST(srv.Observations())
		// Every worker's calls (the restarted one's too) reached the mock.
		assert.GreaterOrEqual(t, r.Endpoints["POST /channels/{channel_id}/messages"], (processes+1)*rest)
		// The mock admits at most 50 a second itself (a 429 otherwise);
		// the peak shows the load was high enough to meet that limit.
		t.Logf("%d REST requests, at most %d with global quota in one second", r.Requests, r.PeakGlobal)
		assert.Zero(t, sum.Worker429, "429s the workers' HTTP clients saw")
		assert.Zero(t, sum.WorkerRESTFailed, "failed REST calls")
	})
	t.Run("KilledProcessResumes", func(t *testing.T) {
		require.Len(t, sum.VictimShards, shards/processes)
		resumes, accepted, replayed, identifies := analyzeResumes(srv.GatewayObservations(), sum.KilledAt, sum.VictimShards)
		assert.Equal(t, len(sum.VictimShards), resumes, "RESUMEs of the killed worker's shards")
		assert.Equal(t, len(sum.VictimShards), accepted, "accepted RESUMEs")
		assert.Zero(t, identifies, "IDENTIFYs of the killed worker's shards after the kill")
		assert.Equal(t, len(sum.VictimShards), sum.RestartResumed, "shards the restarted worker saw RESUMED")
		assert.Zero(t, sum.RestartIdentified, "shards the restarted worker saw READY")
		t.Logf("the resumes replayed %d dispatches", replayed)
	})
	t.Run("NoEventLost", func(t *testing.T) {
		assert.Equal(t, 3*shards*probes, sum.ProbesSent)
		none(t, sum.Unsent, "probes no session took")
		none(t, sum.Missing, "probes never handled")
		none(t, sum.WrongShard, "probes handled by the wrong shard")
		// Duplicates: the reference shard saves its session (and so the
		// sequence number a RESUME starts from) at READY, at RESUMED and
		// when Run ends, not after each event. A process killed with
		// SIGKILL never reaches Run's end, so its sessions in Redis still
		// hold the sequence of READY, and the mock's RESUME replays every
		// dispatch since: the GUILD_CREATEs and the probes sent before
		// the kill, which the worker had handled already, come again. No
		// other duplicate may occur: nothing replays for the workers that
		// were not killed, and the probes sent while the worker was dead
		// or after it came back are handled once.
		dups := 0
		for phase, n := range sum.Duplicates {
			dups += n
			assert.Equal(t, phaseBefore, phase, "%d duplicates of probes sent %s", n, phase)
		}
		for shard := range sum.DupShards {
			assert.Contains(t, sum.VictimShards, shard, "duplicates on shard %d, which was not killed", shard)
		}
		assert.LessOrEqual(t, dups, len(sum.VictimShards)*probes)
		t.Logf("%d probes handled twice: sent before the kill, replayed by the resume (the stored sequence number lags)", dups)
	})
	none(t, sum.Failures, "worker failures")
}

// none fails t when list is not empty, showing its length and first
// elements: the lists here run to hundreds of lines when things go wrong.
func none[T any](t *testing.T, list []T, what string) {
	t.Helper()
	if len(list) > 0 {
		t.Errorf("%s: %d, want none: %s", what, len(list), firstFew(list))
	}
}

// TestBenchMeasures runs the -bench measurement briefly, in this process,
// for both limiters, so that the benchmark cannot rot.
func TestBenchMeasures(t *testing.T) {
	rs := redistest.Start(t)
	for _, limiter := range []string{"memory", "redis"} {
		t.Run(limiter, func(t *testing.T) {
			c := cli{o: workerOptions{Redis: rs.Addr}, b: benchOptions{
				Duration: 100 * time.Millisecond, Goroutines: 2, Routes: 4, Limiter: limiter, NS: "smoke-" + limiter}}
			res, err := benchMeasure(t.Context(), c)
			require.NoError(t, err)
			assert.Positive(t, res.Acquires)
			assert.Len(t, res.Latency, res.Acquires)
			assert.False(t, res.Fallback, "the Redis limiter fell back to local limits")
			rate, p50, p99, _ := summarize([]benchResult{res})
			assert.Positive(t, rate)
			assert.LessOrEqual(t, p50, p99)
		})
	}
}
