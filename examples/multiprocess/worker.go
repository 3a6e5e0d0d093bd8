package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/protocols"
)

// ProbeEvent is the name of the numbered events the parent dispatches to
// every shard; each carries {"id": N}, unique over the run.
const ProbeEvent = "MULTIPROCESS_PROBE"

// InMemoryEnv is the hidden switch that swaps the reference (in-memory,
// per-process) parts in for the Redis ones, to show what goes wrong
// without them: "limiters" swaps the rate limiter and the identify
// limiter, "all" the session store too. Workers inherit it from the
// parent's environment.
const InMemoryEnv = "CORDKIT_MULTIPROCESS_INMEMORY"

// workerOptions is what one worker process runs; the parent passes it as
// flags (see workerArgs and parseWorker).
type workerOptions struct {
	Index          int           // which process this is, 0-based
	Processes      int           // how many processes share the bot
	Shards         int           // the bot's shard count
	MaxConcurrency int           // identify buckets
	Redis          string        // redis-server address
	APIBase        string        // REST base URL, with /api/v10
	GatewayURL     string        // "" asks /gateway/bot
	Channels       []string      // where the REST load posts
	REST           int           // CreateMessage calls to make
	Concurrency    int           // goroutines making them
	JSON           bool          // reports as JSON lines (for the parent) instead of text
	StopOnEOF      bool          // stop when stdin reaches EOF (the parent closes it)
	Timeout        time.Duration // the worker stops by itself after this
	Verbose        bool          // info-level logs of the parts on stderr
}

// workerFlags binds the worker's flags to o; the -worker flag itself is
// the main program's.
func workerFlags(fs *flag.FlagSet, o *workerOptions) {
	fs.IntVar(&o.Processes, "processes", 3, "number of worker processes sharing the bot")
	fs.IntVar(&o.Shards, "shards", 24, "the bot's shard count")
	fs.IntVar(&o.MaxConcurrency, "max-concurrency", 4, "identify buckets (session_start_limit.max_concurrency)")
	fs.StringVar(&o.Redis, "redis", "", "redis-server address (default: start a private one)")
	fs.StringVar(&o.APIBase, "mock", "", "the mock Discord: its REST base http://HOST:PORT/api/v10 or just http://HOST:PORT (default: an embedded one)")
	fs.StringVar(&o.GatewayURL, "gateway", "", "gateway URL (worker mode; default: from /gateway/bot)")
	fs.Func("channels", "comma-separated channel IDs the REST load posts to (worker mode)", func(s string) error {
		o.Channels = strings.Split(s, ",")
		return nil
	})
	fs.IntVar(&o.REST, "rest", 150, "CreateMessage calls per worker")
	fs.IntVar(&o.Concurrency, "rest-concurrency", 16, "goroutines per worker making the REST calls")
	fs.BoolVar(&o.JSON, "json", false, "worker mode: report as JSON lines")
	fs.BoolVar(&o.StopOnEOF, "stop-on-eof", false, "worker mode: stop when stdin is closed")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "stop by itself after this long")
	fs.BoolVar(&o.Verbose, "v", false, "log the parts' info messages on stderr")
}

// workerArgs returns the flags that make a worker run o.
func workerArgs(o workerOptions) []string {
	args := []string{
		fmt.Sprintf("-worker=%d", o.Index),
		fmt.Sprintf("-processes=%d", o.Processes),
		fmt.Sprintf("-shards=%d", o.Shards),
		fmt.Sprintf("-max-concurrency=%d", o.MaxConcurrency),
		"-redis=" + o.Redis,
		"-mock=" + o.APIBase,
		fmt.Sprintf("-rest=%d", o.REST),
		fmt.Sprintf("-rest-concurrency=%d", o.Concurrency),
		fmt.Sprintf("-json=%t", o.JSON),
		fmt.Sprintf("-stop-on-eof=%t", o.StopOnEOF),
		fmt.Sprintf("-timeout=%s", o.Timeout),
		fmt.Sprintf("-v=%t", o.Verbose),
	}
	if o.GatewayURL != "" {
		args = append(args, "-gateway="+o.GatewayURL)
	}
	if len(o.Channels) > 0 {
		args = append(args, "-channels="+strings.Join(o.Channels, ","))
	}
	return args
}

// report is one line of a worker's output: what it just did.
type report struct {
	Worker int    `json:"worker"`
	PID    int    `json:"pid"`
	Kind   string `json:"kind"` // see the kind* constants
	// Shard is the shard concerned (identified, resumed, event).
	Shard int `json:"shard"`
	// Shards lists the process's shards (start).
	Shards []int `json:"shards,omitempty"`
	// Parts says which limiter and session store run (start).
	Parts string `json:"parts,omitempty"`
	// Session is READY's session_id (identified).
	Session string `json:"session,omitempty"`
	// Seq is the dispatch's sequence number (identified, resumed, event).
	Seq int64 `json:"seq,omitempty"`
	// Probe is a probe event's id (event).
	Probe int64 `json:"probe,omitempty"`
	// REST is how many REST calls succeeded so far (rest, rest_done,
	// stopped); Failed how many failed; TooMany how many 429 responses
	// the HTTP client saw (it retries them).
	REST    int `json:"rest,omitempty"`
	Failed  int `json:"failed,omitempty"`
	TooMany int `json:"too_many,omitempty"`
	// Elapsed is the time since the worker started, in milliseconds.
	Elapsed int64 `json:"elapsed_ms"`
	// Error says what failed (error).
	Error string `json:"error,omitempty"`
}

// The kinds of reports.
const (
	kindStart      = "start"      // the process runs; Shards, Parts
	kindIdentified = "identified" // a shard got READY: a new session
	kindResumed    = "resumed"    // a shard got RESUMED: its session went on
	kindConnected  = "connected"  // Gateway.Connect returned: every shard is ready
	kindEvent      = "event"      // a probe event was handled
	kindREST       = "rest"       // REST progress
	kindRESTDone   = "rest_done"  // the REST load is over
	kindStopped    = "stopped"    // the worker closed its State and exits
	kindRESTError  = "rest_error" // one REST call failed
	kindError      = "error"      // the worker failed and exits non-zero
)

// String renders r as a line for people.
func (r report) String() string {
	p := fmt.Sprintf("worker %d [pid %d] %6.2fs: ", r.Worker, r.PID, float64(r.Elapsed)/1000)
	switch r.Kind {
	case kindStart:
		return p + fmt.Sprintf("started, shards %v, %s", r.Shards, r.Parts)
	case kindIdentified:
		return p + fmt.Sprintf("shard %d IDENTIFIED (new session %s)", r.Shard, r.Session)
	case kindResumed:
		return p + fmt.Sprintf("shard %d RESUMED (seq %d)", r.Shard, r.Seq)
	case kindConnected:
		return p + "every shard is ready"
	case kindEvent:
		return p + fmt.Sprintf("shard %d received event #%d (seq %d)", r.Shard, r.Probe, r.Seq)
	case kindREST, kindRESTDone, kindStopped:
		what := map[string]string{kindREST: "REST", kindRESTDone: "REST load done", kindStopped: "stopped"}[r.Kind]
		return p + fmt.Sprintf("%s: %d calls done, %d failed, %d × 429 seen", what, r.REST, r.Failed, r.TooMany)
	case kindRESTError:
		return p + "REST call failed: " + r.Error
	case kindError:
		return p + "error: " + r.Error
	}
	return p + r.Kind
}

// reporter writes reports, one per line, from any goroutine. Each line is
// one write, so a line written before the process is killed is whole.
type reporter struct {
	mu    sync.Mutex
	out   io.Writer
	json  bool
	base  report
	start time.Time
}

func (rp *reporter) send(r report) {
	r.Worker, r.PID = rp.base.Worker, rp.base.PID
	r.Elapsed = time.Since(rp.start).Milliseconds()
	var line []byte
	if rp.json {
		line, _ = json.Marshal(r)
	} else {
		line = []byte(r.String())
	}
	line = append(line, '\n')
	rp.mu.Lock()
	defer rp.mu.Unlock()
	_, _ = rp.out.Write(line)
}

// countingDoer is the HTTP client of the worker's State: it counts the
// 429 responses, which the cordkit HTTP client retries and so never
// returns.
type countingDoer struct {
	inner   *http.Client
	tooMany atomic.Int64
}

func newCountingDoer() *countingDoer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &countingDoer{inner: &http.Client{
		Transport: tr,
		Timeout:   time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // the token stays on the API host
		},
	}}
}

// Do sends req and counts a 429 answer.
func (d *countingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.inner.Do(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		d.tooMany.Add(1)
	}
	return resp, err
}

// runWorker runs process o.Index's share of the bot until ctx ends (or
// stdin closes, with StopOnEOF), reporting to out. The token comes from
// $TOKEN, or is the mock's.
func runWorker(ctx context.Context, o workerOptions, out io.Writer, stderr io.Writer) error {
	rp := &reporter{out: out, json: o.JSON, base: report{Worker: o.Index, PID: os.Getpid()}, start: time.Now()}
	err := worker(ctx, o, rp, stderr)
	if err != nil {
		rp.send(report{Kind: kindError, Error: err.Error()})
	}
	return err
}

func worker(ctx context.Context, o workerOptions, rp *reporter, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if o.StopOnEOF {
		go func() { // ends with the process
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	if o.Processes < 1 || o.Index < 0 || o.Index >= o.Processes {
		return fmt.Errorf("-worker %d is not one of the %d processes", o.Index, o.Processes)
	}
	if o.APIBase == "" || o.Redis == "" && inMemory() != "all" {
		return errors.New("a worker needs -mock and -redis")
	}
	token := os.Getenv("TOKEN")
	if token == "" {
		token = mockdiscord.DefaultToken
	}
	shards, err := shardsForProcess(o.Index, o.Processes, o.Shards, o.MaxConcurrency)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if o.Verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	doer := newCountingDoer()
	sheet, parts, closeParts, err := typeSheet(o.Redis, cordkit.BotToken(token).ID(), logger,
		cordkit.TypeSheet{HTTPDoer: doer, Logger: logger})
	if err != nil {
		return err
	}
	defer closeParts()
	rp.send(report{Kind: kindStart, Shards: shards, Parts: parts})

	state, err := cordkit.New(cordkit.Config{
		Token:          cordkit.BotToken(token),
		Intents:        protocols.IntentGuilds,          // no MESSAGE_CREATE for the REST load's messages
		APIBase:        newControl(o.APIBase).APIBase(), // -mock may be the root URL
		GatewayURL:     o.GatewayURL,
		ShardCount:     o.Shards,
		ShardIDs:       shards,
		MaxConcurrency: o.MaxConcurrency,
	}, sheet)
	if err != nil {
		return err
	}
	defer state.Close() // closes the shards with 1000: their sessions end

	// The listeners live as long as the State: no need to remove them.
	state.Events().Listen("READY", func(ev protocols.Event) {
		var d struct {
			SessionID string `json:"session_id"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		rp.send(report{Kind: kindIdentified, Shard: ev.Shard, Session: d.SessionID, Seq: ev.Seq})
	})
	state.Events().Listen("RESUMED", func(ev protocols.Event) {
		rp.send(report{Kind: kindResumed, Shard: ev.Shard, Seq: ev.Seq})
	})
	state.Events().Listen(ProbeEvent, func(ev protocols.Event) {
		var d struct {
			ID int64 `json:"id"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		rp.send(report{Kind: kindEvent, Shard: ev.Shard, Probe: d.ID, Seq: ev.Seq})
	})

	var load sync.WaitGroup
	counts := &restCounts{doer: doer}
	load.Go(func() { restLoad(ctx, o, state, counts, rp) })
	defer load.Wait()

	if err := state.Gateway().Connect(ctx); err != nil {
		stopped := ctx.Err() != nil
		cancel() // ends the REST load
		if stopped {
			return nil // stopped before every shard was ready
		}
		return fmt.Errorf("connecting the gateway: %w", err)
	}
	rp.send(report{Kind: kindConnected})
	<-ctx.Done()
	load.Wait()
	if err := state.Close(); err != nil {
		return err
	}
	rp.send(counts.report(kindStopped))
	return nil
}

// restCounts counts a worker's REST calls.
type restCounts struct {
	done, failed atomic.Int64
	doer         *countingDoer // counts the 429s
}

func (c *restCounts) report(kind string) report {
	return report{Kind: kind, REST: int(c.done.Load()), Failed: int(c.failed.Load()), TooMany: int(c.doer.tooMany.Load())}
}

// hotEvery makes every hotEvery-th REST call of a worker go to the first
// channel, which every worker shares: its per-channel bucket (5 per 5 s
// on the mock) is then what limits those calls, in every process at
// once, while the other calls, spread over all channels, meet the global
// limit (50/s).
const hotEvery = 30

// restLoad makes o.REST CreateMessage calls with o.Concurrency goroutines,
// spreading them over o.Channels (starting at a different channel in each
// worker; see hotEvery for the shared hot channel), and reports progress.
func restLoad(ctx context.Context, o workerOptions, state *cordkit.State, c *restCounts, rp *reporter) {
	if o.REST <= 0 || len(o.Channels) == 0 {
		return
	}
	var next atomic.Int64
	every := int64(max(o.REST/5, 1))
	var wg sync.WaitGroup
	for range max(o.Concurrency, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > int64(o.REST) {
					return
				}
				ch := o.Channels[(int(i)+o.Index*len(o.Channels)/max(o.Processes, 1))%len(o.Channels)]
				if i%hotEvery == 0 {
					ch = o.Channels[0]
				}
				_, err := state.REST().CreateMessage(ctx, ch, cordkit.MessageCreate{
					Content: fmt.Sprintf("load %d from worker %d", i, o.Index),
				})
				switch {
				case err == nil:
					if n := c.done.Add(1); n%every == 0 {
						rp.send(c.report(kindREST))
					}
				case ctx.Err() == nil:
					c.failed.Add(1)
					rp.send(report{Kind: kindRESTError, Error: err.Error()})
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() == nil {
		rp.send(c.report(kindRESTDone))
	}
}

// inMemory returns the value of [InMemoryEnv]: "", "limiters" or "all".
func inMemory() string { return os.Getenv(InMemoryEnv) }
