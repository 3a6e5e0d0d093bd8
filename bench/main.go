// Command bench runs cordkit side by side with discordgo, disgo and bare
// net/http against the in-process mock Discord (conformance/mockdiscord)
// and prints markdown tables. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// config is one benchmark invocation.
type config struct {
	scenarios []string
	runs      int
	n         int // requests per op per library per run (rest)
	workers   int // concurrent workers (rest)

	limitN        int // CreateMessage calls per library per run (rest-limits)
	limitWorkers  int
	limitChannels int

	events     int           // dispatches per run (gateway)
	shards     int           // shards per run (idle)
	idleSettle time.Duration // idle: pause between the last READY and the measurement
}

func defaultConfig() config {
	return config{
		scenarios: []string{"rest", "rest-limits", "gateway", "idle"},
		runs:      5, n: 2000, workers: 8,
		limitN: 500, limitWorkers: 32, limitChannels: 50,
		events: 20000, shards: 1000, idleSettle: 3 * time.Second,
	}
}

// smokeConfig is tiny, for CI: about 15 s in all.
func smokeConfig() config {
	c := defaultConfig()
	c.runs, c.n, c.limitN, c.events, c.shards = 1, 100, 75, 600, 8
	c.idleSettle = 100 * time.Millisecond
	return c
}

func main() {
	if ran, err := runIdleChild(); ran {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: idle child:", err)
			os.Exit(1)
		}
		return
	}
	def := defaultConfig()
	scenario := flag.String("scenario", strings.Join(def.scenarios, ","), "comma-separated scenarios: rest, rest-limits, gateway, idle")
	runs := flag.Int("runs", def.runs, "runs per library; tables show medians")
	n := flag.Int("n", def.n, "rest: requests per operation per library per run")
	limitN := flag.Int("limit-n", def.limitN, "rest-limits: CreateMessage calls per library per run")
	events := flag.Int("events", def.events, "gateway: dispatches per library per run")
	shards := flag.Int("shards", def.shards, "idle: shards per library per run")
	smoke := flag.Bool("smoke", false, "tiny sizes for CI (1 run, -n 100, -limit-n 75, -events 600, -shards 8); overrides those flags")
	flag.Parse()

	cfg := def
	cfg.scenarios = strings.Split(*scenario, ",")
	cfg.runs, cfg.n, cfg.limitN, cfg.events, cfg.shards = *runs, *n, *limitN, *events, *shards
	if *smoke {
		s := smokeConfig()
		cfg.runs, cfg.n, cfg.limitN, cfg.events, cfg.shards = s.runs, s.n, s.limitN, s.events, s.shards
		cfg.idleSettle = s.idleSettle
	}
	if _, err := runAll(cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// results is what run measured, for the tables and for TestSmoke.
type results struct {
	rest     []restRow
	limits   []limitRow
	gateway  []gwRow
	gwFloors []gwFloor
	decode   []decodeRow
	idle     []idleRow
}

func runAll(cfg config, w io.Writer) (*results, error) {
	if cfg.runs < 1 || cfg.n < 1 || cfg.limitN < 1 || cfg.events < 1 || cfg.shards < 1 {
		return nil, errors.New("-runs, -n, -limit-n, -events and -shards must be positive")
	}
	res := &results{}
	fmt.Fprintf(w, "Go %s, %s/%s, GOMAXPROCS %d. Medians of %d run(s).\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), cfg.runs)
	for _, sc := range cfg.scenarios {
		switch strings.TrimSpace(sc) {
		case "rest":
			rows, err := benchREST(cfg)
			if err != nil {
				return res, err
			}
			res.rest = rows
			printREST(w, cfg, rows)
		case "rest-limits":
			rows, err := benchLimits(cfg)
			if err != nil {
				return res, err
			}
			res.limits = rows
			printLimits(w, cfg, rows)
		case "gateway":
			rows, floors, decode, err := benchGateway(cfg)
			if err != nil {
				return res, err
			}
			res.gateway, res.gwFloors, res.decode = rows, floors, decode
			printGateway(w, cfg, rows, floors, decode)
		case "idle":
			rows, err := benchIdle(cfg)
			if err != nil {
				return res, err
			}
			res.idle = rows
			printIdle(w, cfg, rows)
		default:
			return res, fmt.Errorf("unknown scenario %q (want rest, rest-limits, gateway, idle)", sc)
		}
	}
	return res, nil
}

func startMock(opts *mockdiscord.Options) (*mockdiscord.Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	srv := mockdiscord.New(opts)
	if err := srv.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return srv, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ---- rest: throughput without limits ----

type restRow struct {
	op, lib      string
	reqPerSec    float64 // median
	allocsPerReq float64 // median, whole process (client + in-process mock)
	bytesPerReq  float64
	failures     int // summed over runs
}

var restOps = []struct {
	name string
	call func(ctx context.Context, c client, i int, nch int) error
}{
	{"GET /users/@me", func(ctx context.Context, c client, _ int, _ int) error { return c.getMe(ctx) }},
	{"POST /channels/{id}/messages", func(ctx context.Context, c client, i int, nch int) error {
		return c.createMessage(ctx, i%nch, "bench message")
	}},
}

func benchREST(cfg config) ([]restRow, error) {
	var rows []restRow
	for _, op := range restOps {
		for _, lib := range libraries {
			var rps, allocs, bytes []float64
			fails := 0
			for range cfg.runs {
				r, a, b, f, err := restOnce(cfg, lib, op.call)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", op.name, lib.name, err)
				}
				rps, allocs, bytes = append(rps, r), append(allocs, a), append(bytes, b)
				fails += f
			}
			rows = append(rows, restRow{op: op.name, lib: lib.name, reqPerSec: median(rps), allocsPerReq: median(allocs), bytesPerReq: median(bytes), failures: fails})
		}
	}
	return rows, nil
}

// restOnce runs one library against a fresh mock: a short untimed warm-up
// (connections, lazily built state), then n requests from cfg.workers
// goroutines, timed, with the process's MemStats read around them.
func restOnce(cfg config, lib library, call func(context.Context, client, int, int) error) (rps, allocs, bytes float64, fails int, err error) {
	srv, err := startMock(&mockdiscord.Options{DisableRateLimits: true, InvalidRequestLimit: -1})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer srv.Close()
	c, err := lib.build(srv, false)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer c.close()
	ctx := context.Background()
	nch := len(srv.Channels())

	drive := func(n int) int {
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		for range cfg.workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					if call(ctx, c, i, nch) != nil {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return int(failed.Load())
	}
	if f := drive(min(cfg.n, 4*cfg.workers)); f > 0 {
		return 0, 0, 0, 0, fmt.Errorf("%d warm-up requests failed", f)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	fails = drive(cfg.n)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	n := float64(cfg.n)
	return n / elapsed.Seconds(), float64(after.Mallocs-before.Mallocs) / n, float64(after.TotalAlloc-before.TotalAlloc) / n, fails, nil
}

func printREST(w io.Writer, cfg config, rows []restRow) {
	fmt.Fprintf(w, "### REST throughput, no rate limits (%d requests per run, %d workers, loopback TCP)\n\n", cfg.n, cfg.workers)
	fmt.Fprintln(w, "Allocations are whole-process MemStats deltas (the mock runs in the same process); \"client\" columns subtract the net/http row of the same operation, i.e. they are what the library allocates beyond a bare http.Client that decodes nothing.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| operation | library | req/s | allocs/req | B/req | client allocs/req | client B/req | failures |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	floor := map[string]restRow{}
	for _, r := range rows {
		if r.lib == "net/http" {
			floor[r.op] = r
		}
	}
	for _, r := range rows {
		f := floor[r.op]
		fmt.Fprintf(w, "| %s | %s | %.0f | %.1f | %.0f | %+.1f | %+.0f | %d |\n",
			r.op, r.lib, r.reqPerSec, r.allocsPerReq, r.bytesPerReq, r.allocsPerReq-f.allocsPerReq, r.bytesPerReq-f.bytesPerReq, r.failures)
	}
	fmt.Fprintln(w)
}

// ---- rest-limits: CreateMessage under Discord's limits ----

const (
	limitPerWindow = 5
	limitWindow    = 1500 * time.Millisecond
	globalPerSec   = mockdiscord.DefaultGlobalLimit
	createEndpoint = "POST /channels/{channel_id}/messages"
)

type limitRow struct {
	lib                        string
	calls                      int
	completed, failures        int     // medians
	tooMany, userScope, global float64 // medians of 429s
	wall                       time.Duration
	floor, minimum             time.Duration
	firstErr                   string
}

// limitsOptions: the mock's default buckets, POST messages at 5 per 1.5 s
// per channel, the default global limit (50/s), and enough channels.
func limitsOptions(channels int) *mockdiscord.Options {
	buckets := mockdiscord.DefaultBuckets()
	for i := range buckets {
		if buckets[i].Endpoint == createEndpoint {
			buckets[i].Limit, buckets[i].Window = limitPerWindow, limitWindow
		}
	}
	guilds := (channels + 9) / 10
	return &mockdiscord.Options{Buckets: buckets, Guilds: guilds, ChannelsPerGuild: 10}
}

// limitFloor is the wall time the limits allow for calls spread
// round-robin over channels, counting whole windows: per channel
// ceil(k/5) windows of 1.5 s, and calls/50 s for the global limit; the
// larger one. It counts the last window in full, so a perfect client
// finishes up to one window sooner: limitMinimum is that tight bound (the
// last window starts at (ceil(k/5)-1) × 1.5 s; call j can go out at
// floor(j/50) s in the global sliding window), plus the time to send.
func limitFloor(calls, channels int) time.Duration {
	perChannel := (calls + channels - 1) / channels
	ch := time.Duration(math.Ceil(float64(perChannel)/limitPerWindow)) * limitWindow
	gl := time.Duration(float64(calls) / globalPerSec * float64(time.Second))
	return max(ch, gl)
}

func limitMinimum(calls, channels int) time.Duration {
	perChannel := (calls + channels - 1) / channels
	ch := time.Duration((perChannel+limitPerWindow-1)/limitPerWindow-1) * limitWindow
	gl := time.Duration((calls+globalPerSec-1)/globalPerSec-1) * time.Second
	return max(ch, gl)
}

func benchLimits(cfg config) ([]limitRow, error) {
	var rows []limitRow
	for _, lib := range libraries {
		if !lib.limiter {
			continue // bare net/http has no limiter to measure
		}
		var completed, failures, tooMany, user, global, wall []float64
		row := limitRow{lib: lib.name, calls: cfg.limitN}
		for range cfg.runs {
			r, err := limitsOnce(cfg, lib)
			if err != nil {
				return nil, fmt.Errorf("rest-limits %s: %w", lib.name, err)
			}
			completed, failures = append(completed, float64(r.completed)), append(failures, float64(r.failures))
			tooMany, user, global = append(tooMany, r.tooMany), append(user, r.userScope), append(global, r.global)
			wall = append(wall, float64(r.wall))
			row.floor, row.minimum = r.floor, r.minimum
			if row.firstErr == "" {
				row.firstErr = r.firstErr
			}
		}
		row.completed, row.failures = int(median(completed)), int(median(failures))
		row.tooMany, row.userScope, row.global = median(tooMany), median(user), median(global)
		row.wall = time.Duration(median(wall))
		rows = append(rows, row)
	}
	return rows, nil
}

func limitsOnce(cfg config, lib library) (limitRow, error) {
	srv, err := startMock(limitsOptions(cfg.limitChannels))
	if err != nil {
		return limitRow{}, err
	}
	defer srv.Close()
	nch := min(cfg.limitChannels, len(srv.Channels()))
	c, err := lib.build(srv, true)
	if err != nil {
		return limitRow{}, err
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var next, done, failed atomic.Int64
	var errOnce sync.Once
	var firstErr string
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.limitWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.limitN {
					return
				}
				if err := c.createMessage(ctx, i%nch, fmt.Sprintf("limits %d", i)); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	r := limitRow{lib: lib.name, calls: cfg.limitN, wall: time.Since(start), floor: limitFloor(cfg.limitN, nch),
		minimum:   limitMinimum(cfg.limitN, nch),
		completed: int(done.Load()), failures: int(failed.Load()), firstErr: firstErr}
	for _, o := range srv.Observations() {
		if o.Status != http.StatusTooManyRequests {
			continue
		}
		r.tooMany++
		switch o.Scope {
		case "user":
			r.userScope++
		case "global":
			r.global++
		}
	}
	return r, nil
}

func printLimits(w io.Writer, cfg config, rows []limitRow) {
	fmt.Fprintf(w, "### REST under Discord's limits (%d CreateMessage calls per run from %d goroutines over %d channels; POST messages 5 per 1.5 s per channel, global 50/s)\n\n",
		cfg.limitN, cfg.limitWorkers, cfg.limitChannels)
	fmt.Fprintln(w, "| library | calls | completed | failures | 429s | of which user / global | wall | floor (whole windows) | tight minimum |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %g | %g / %g | %.2fs | %.2fs | %.2fs |\n",
			r.lib, r.calls, r.completed, r.failures, r.tooMany, r.userScope, r.global, r.wall.Seconds(), r.floor.Seconds(), r.minimum.Seconds())
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		if r.firstErr != "" {
			fmt.Fprintf(w, "- %s, first error: %s\n", r.lib, r.firstErr)
		}
	}
	fmt.Fprintln(w)
}
