package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cordkit/cordkit/protocols"
)

// benchOptions are the flags of -bench.
type benchOptions struct {
	Duration   time.Duration // measured time per row
	Goroutines int           // concurrent acquirers per process
	Routes     int           // distinct channels the permits are for

	// Set by the parent for a bench child (-bench-child).
	Child   bool
	Limiter string // "redis" or "memory"
	Start   int64  // Unix nanoseconds at which to start measuring
	NS      string // the Redis namespace of the row
}

func benchFlags(fs *flag.FlagSet, b *benchOptions) {
	fs.DurationVar(&b.Duration, "bench-duration", 3*time.Second, "-bench: measured time per row")
	fs.IntVar(&b.Goroutines, "bench-goroutines", 16, "-bench: concurrent acquirers per process")
	fs.IntVar(&b.Routes, "bench-routes", 64, "-bench: distinct channels the permits are for")
	fs.BoolVar(&b.Child, "bench-child", false, "internal: run one bench process and print its result as JSON")
	fs.StringVar(&b.Limiter, "bench-limiter", "redis", "internal: redis or memory")
	fs.Int64Var(&b.Start, "bench-start", 0, "internal: when to start, in Unix nanoseconds")
	fs.StringVar(&b.NS, "bench-ns", "bench", "internal: the Redis namespace")
}

// benchResult is what one bench process measured.
type benchResult struct {
	Acquires int             `json:"acquires"`
	Elapsed  time.Duration   `json:"elapsed"`
	Latency  []time.Duration `json:"latency"` // Acquire plus Complete, a sample of at most maxSamples
	Fallback bool            `json:"fallback,omitempty"`
	Error    string          `json:"error,omitempty"`
}

const maxSamples = 100000

// benchGlobalLimit is the global limit the bench's limiters enforce: high
// enough never to be what limits them, so the table shows the limiter's
// own cost. Discord's 50/s would cap every row at 50 acquires/s.
const benchGlobalLimit = 1 << 20

// benchRow is one line of the table.
type benchRow struct {
	limiter    string
	processes  int
	goroutines int
}

// runBench measures the Redis rate limiter against the in-memory one, each
// row in fresh child processes started together, and prints a markdown
// table.
func runBench(ctx context.Context, c cli, stdout, stderr io.Writer) error {
	if c.b.Child {
		return benchChild(ctx, c, stdout)
	}
	addr, stopRedis, err := startRedis(c.o.Redis)
	if err != nil {
		return err
	}
	defer stopRedis()
	g := c.b.Goroutines
	rows := []benchRow{
		{"memory", 1, 1}, {"redis", 1, 1},
		{"memory", 1, g}, {"redis", 1, g}, {"redis", 3, g},
	}
	results := make([][]benchResult, len(rows))
	for i, row := range rows {
		results[i], err = benchRun(ctx, c, addr, fmt.Sprintf("bench%d", i), row, stderr)
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "Rate limiter: Acquire + Complete for POST /channels/{id}/messages over %d channels, "+
		"global limit %d (never reached), %v per row; redis-server at %s.\n\n", c.b.Routes, benchGlobalLimit, c.b.Duration, addr)
	fmt.Fprintln(stdout, "| limiter | processes | goroutines each | acquires/s (all processes) | p50 | p99 |")
	fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|")
	p50s, p99s := map[string]time.Duration{}, map[string]time.Duration{}
	for i, row := range rows {
		rate, p50, p99, fallback := summarize(results[i])
		name := map[string]string{"memory": "in-memory (reference)", "redis": "Redis (impl/redis)"}[row.limiter]
		if fallback {
			name += " (fell back to local limits)"
		}
		fmt.Fprintf(stdout, "| %s | %d | %d | %.0f | %v | %v |\n", name, row.processes, row.goroutines, rate, round(p50), round(p99))
		if row.processes == 1 && row.goroutines == 1 {
			p50s[row.limiter], p99s[row.limiter] = p50, p99
		}
	}
	fmt.Fprintf(stdout, "\nLatency the Redis limiter adds per request (one goroutine, no contention): p50 +%v, p99 +%v.\n",
		round(p50s["redis"]-p50s["memory"]), round(p99s["redis"]-p99s["memory"]))
	return nil
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= 10*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Nanosecond)
}

// summarize adds up the processes of a row: the total rate, and the
// percentiles of their latencies together.
func summarize(rs []benchResult) (rate float64, p50, p99 time.Duration, fallback bool) {
	var all []time.Duration
	for _, r := range rs {
		rate += float64(r.Acquires) / r.Elapsed.Seconds()
		all = append(all, r.Latency...)
		fallback = fallback || r.Fallback
	}
	slices.Sort(all)
	if len(all) == 0 {
		return rate, 0, 0, fallback
	}
	at := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	return rate, at(0.50), at(0.99), fallback
}

// benchRun starts row.processes children at once and collects their
// results.
func benchRun(ctx context.Context, c cli, addr, ns string, row benchRow, stderr io.Writer) ([]benchResult, error) {
	start := time.Now().Add(time.Second + 500*time.Millisecond*time.Duration(row.processes)) // after every child is up
	args := []string{"-bench", "-bench-child", "-redis=" + addr, "-bench-limiter=" + row.limiter,
		fmt.Sprintf("-bench-start=%d", start.UnixNano()), "-bench-ns=" + ns,
		fmt.Sprintf("-bench-duration=%s", c.b.Duration), fmt.Sprintf("-bench-goroutines=%d", row.goroutines),
		fmt.Sprintf("-bench-routes=%d", c.b.Routes)}
	ctx, cancel := context.WithTimeout(ctx, c.b.Duration+time.Minute)
	defer cancel()
	results := make([]benchResult, row.processes)
	errs := make([]error, row.processes)
	var wg sync.WaitGroup
	for i := range row.processes {
		wg.Go(func() {
			var out strings.Builder
			cmd := benchCommand(ctx, args)
			cmd.Stdout, cmd.Stderr = &out, &prefixWriter{prefix: "bench child: ", w: stderr}
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("bench %s ×%d: %w: %s", row.limiter, row.processes, err, out.String())
				return
			}
			if err := json.Unmarshal([]byte(out.String()), &results[i]); err != nil {
				errs[i] = fmt.Errorf("bench %s ×%d: %w", row.limiter, row.processes, err)
				return
			}
			if results[i].Error != "" {
				errs[i] = errors.New(results[i].Error)
			}
		})
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// benchCommand builds a bench child's command; tests replace it.
var benchCommand = reexec

// benchChild runs the limiter flat out for the row's duration and prints
// its result as JSON.
func benchChild(ctx context.Context, c cli, stdout io.Writer) error {
	res, err := benchMeasure(ctx, c)
	if err != nil {
		res.Error = err.Error()
	}
	return json.NewEncoder(stdout).Encode(res)
}

func benchMeasure(ctx context.Context, c cli) (benchResult, error) {
	limiter, fellBack, closeLimiter, err := benchLimiter(c.b.Limiter, c.o.Redis, c.b.NS)
	if err != nil {
		return benchResult{}, err
	}
	defer closeLimiter()
	routes := make([]protocols.Route, max(c.b.Routes, 1))
	for i := range routes {
		if routes[i], err = protocols.NewRoute(http.MethodPost, "/channels/{channel_id}/messages", fmt.Sprint(1000000000000000000+i)); err != nil {
			return benchResult{}, err
		}
	}
	// A response that leaves each bucket nearly all of a large window, so
	// that only the limiter's own work is measured.
	info := protocols.RateLimitInfo{Status: http.StatusOK, Bucket: "bench", HasLimit: true,
		Limit: 1 << 30, Remaining: 1<<30 - 1, ResetAfter: time.Hour}
	once := func(r protocols.Route) error {
		p, err := limiter.Acquire(ctx, r)
		if err != nil {
			return err
		}
		p.Complete(info)
		return nil
	}
	for _, r := range routes { // teach the limiter every bucket first
		if err := once(r); err != nil {
			return benchResult{}, err
		}
	}
	start := time.Unix(0, c.b.Start)
	if d := time.Until(start); d > 0 {
		time.Sleep(d)
	}
	start = time.Now()
	end := start.Add(c.b.Duration)
	lats := make([][]time.Duration, c.b.Goroutines)
	errs := make([]error, c.b.Goroutines)
	var wg sync.WaitGroup
	for g := range c.b.Goroutines {
		wg.Go(func() {
			for i := g; ; i += c.b.Goroutines {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if err := once(routes[i%len(routes)]); err != nil {
					errs[g] = err
					return
				}
				lats[g] = append(lats[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	res := benchResult{Elapsed: time.Since(start), Fallback: fellBack()}
	var all []time.Duration
	for _, l := range lats {
		res.Acquires += len(l)
		all = append(all, l...)
	}
	if len(all) > maxSamples { // an even sample keeps the percentiles
		step := float64(len(all)) / maxSamples
		sample := make([]time.Duration, 0, maxSamples)
		for i := range maxSamples {
			sample = append(sample, all[int(float64(i)*step)])
		}
		all = sample
	}
	res.Latency = all
	return res, errors.Join(errs...)
}
