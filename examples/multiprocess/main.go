// Command multiprocess runs one bot in several OS processes that share
// their limits and sessions through Redis: the rate limiter (per-route
// buckets and the global 50/s), the identify limiter (max_concurrency
// buckets, one IDENTIFY per bucket per 5 s) and the session store, all
// from impl/redis.
//
// Run with no flags, it starts a private redis-server (it must be
// installed: apt-get install -y redis-server, or brew install redis) and
// the embedded mock Discord on 127.0.0.1, then three worker processes
// (this program again, with -worker i), each running its share of a
// 24-shard bot with max_concurrency 4 (cordkit.ShardsForProcess) and
// posting 150 messages over REST. The parent then sends numbered events
// to every shard, kills one worker with SIGKILL, sends more while it is
// dead, starts it again (its shards RESUME from the sessions in Redis),
// sends more, stops everything and prints a summary of what the mock saw:
// the identify order per bucket, the 429s (none), the resumes and the
// events. Every worker line is printed as it happens. It takes about 30
// seconds, because 24 shards in 4 buckets need 6 identify rounds 5
// seconds apart.
//
//	go run ./examples/multiprocess
//	go run ./examples/multiprocess -processes 4 -shards 16 -redis 127.0.0.1:6379
//	go run ./examples/multiprocess -mock http://127.0.0.1:8088   # a cmd/mockdiscord started with -shards 24 -max-concurrency 4
//	go run ./examples/multiprocess -bench                         # the Redis limiter's throughput and latency
//
// A worker can also be started by hand, on any machine that reaches the
// Redis and the mock (or Discord, with TOKEN set):
//
//	multiprocess -worker 0 -processes 3 -redis HOST:6379 -mock http://HOST:8088/api/v10
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/internal/redistest"
)

func main() {
	os.Exit(cliMain(os.Args[1:], os.Stdout, os.Stderr))
}

// mockIdentifyInterval is the identify spacing the embedded mock
// enforces per bucket: Discord's 5 s less 100 ms. The Redis identify
// limiter lets the shards of a bucket go 5 s (plus a margin for Redis's
// reply) apart, whichever process they are in; each IDENTIFY then reaches
// the gateway a dial and a HELLO later, a delay that varies by some
// milliseconds from shard to shard, and by more on a loaded machine. The
// 100 ms absorb that jitter, which is not the limiter's to control, while
// IDENTIFYs that per-process limiters let through together, milliseconds
// apart, are still rejected.
const mockIdentifyInterval = mockdiscord.DefaultIdentifyInterval - 100*time.Millisecond

// cli is the parsed command line.
type cli struct {
	worker int  // -worker: run as that worker; -1 runs the parent
	bench  bool // -bench
	probes int  // -probes
	kill   bool // -kill
	o      workerOptions
	b      benchOptions
}

func parseFlags(args []string, stderr io.Writer) (cli, error) {
	var c cli
	fs := flag.NewFlagSet("multiprocess", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.worker, "worker", -1, "run as worker `i` of -processes (the parent starts them)")
	fs.BoolVar(&c.bench, "bench", false, "measure the Redis rate limiter against the in-memory one and print a table")
	fs.IntVar(&c.probes, "probes", 3, "numbered events sent to each shard before, during and after the kill")
	fs.BoolVar(&c.kill, "kill", true, "kill one worker with SIGKILL and start it again")
	workerFlags(fs, &c.o)
	benchFlags(fs, &c.b)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c.o.Index = c.worker
	return c, nil
}

// cliMain runs the command line args and returns the exit code.
func cliMain(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	switch {
	case c.worker >= 0:
		err = runWorker(ctx, c.o, stdout, stderr)
	case c.bench:
		err = runBench(ctx, c, stdout, stderr)
	default:
		err = runParent(ctx, c, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "multiprocess:", err)
		return 1
	}
	return 0
}

// startRedis starts a private redis-server, unless addr is set, and
// returns its address and a func stopping it.
func startRedis(addr string) (string, func(), error) {
	if addr != "" {
		return addr, func() {}, nil
	}
	if _, err := redistest.Binary(); err != nil {
		return "", nil, fmt.Errorf("no -redis address and no redis-server to start: %s", redistest.InstallHint)
	}
	dir, err := os.MkdirTemp("", "multiprocess-redis-")
	if err != nil {
		return "", nil, err
	}
	srv, err := redistest.StartServer(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	return srv.Addr, func() { srv.Stop(); _ = os.RemoveAll(dir) }, nil
}

// mockOptions is the embedded mock for a bot of shards shards: one guild
// and four channels per shard, so the REST load has room under the
// per-channel limits and meets the global one.
func mockOptions(shards, maxConcurrency int) *mockdiscord.Options {
	return &mockdiscord.Options{
		Guilds: shards, ChannelsPerGuild: 4,
		Shards: shards, MaxConcurrency: maxConcurrency,
		IdentifyInterval: mockIdentifyInterval,
	}
}

// reexec returns the command of a worker: this program with args.
func reexec(ctx context.Context, args []string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.CommandContext(ctx, exe, args...)
}

func runParent(ctx context.Context, c cli, stdout, stderr io.Writer) error {
	redisAddr, stopRedis, err := startRedis(c.o.Redis)
	if err != nil {
		return err
	}
	defer stopRedis()
	sc := &scenario{
		Processes: c.o.Processes, Shards: c.o.Shards, MaxConcurrency: c.o.MaxConcurrency,
		Probes: c.probes, REST: c.o.REST, RESTConcurrency: c.o.Concurrency, Kill: c.kill,
		Redis: redisAddr, Command: reexec, Log: stdout,
		WorkerStderr: func(i int) io.Writer { return &prefixWriter{prefix: fmt.Sprintf("worker %d log: ", i), w: stderr} },
	}
	if c.o.APIBase == "" {
		srv := mockdiscord.New(mockOptions(c.o.Shards, c.o.MaxConcurrency))
		if err := srv.Start("127.0.0.1:0"); err != nil {
			return fmt.Errorf("starting the mock Discord: %w", err)
		}
		defer srv.Close()
		sc.Mock, sc.IdentifyInterval = newControl(srv.APIBase()), mockIdentifyInterval
	} else {
		sc.Mock = newControl(c.o.APIBase)
	}
	fmt.Fprintf(stdout, "mock Discord at %s, redis-server at %s\n", sc.Mock.APIBase(), redisAddr)
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	sum, err := sc.Run(ctx)
	sum.Write(stdout)
	if err != nil {
		return err
	}
	if probs := sum.Problems(); len(probs) > 0 {
		return fmt.Errorf("%d problems", len(probs))
	}
	return nil
}
