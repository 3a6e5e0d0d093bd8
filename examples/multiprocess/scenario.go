package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"sync"
	"time"
)

// scenario is the parent's script: start the workers, probe every shard
// with numbered events before, during and after one worker is killed
// (SIGKILL) and started again, stop the workers, and read the mock's
// observations into a summary.
type scenario struct {
	Processes, Shards, MaxConcurrency int
	// Probes is how many probe events each shard gets in each phase.
	Probes int
	// REST and RESTConcurrency are each worker's CreateMessage calls and
	// the goroutines making them.
	REST, RESTConcurrency int
	// Kill makes the scenario kill a worker and start it again.
	Kill bool
	// Redis is the redis-server address the workers share.
	Redis string
	// Mock drives the mock Discord.
	Mock *control
	// IdentifyInterval is the spacing the mock enforces per identify
	// bucket; the summary reports identifies closer than it. Zero checks
	// only the mock's own rejections.
	IdentifyInterval time.Duration
	// Command returns the command that runs a worker with these flags.
	Command func(ctx context.Context, args []string) *exec.Cmd
	// Log receives progress for people: every worker report and phase.
	// Nil means none.
	Log io.Writer
	// WorkerStderr returns where worker index's logs go; nil discards them.
	WorkerStderr func(index int) io.Writer

	mu    sync.Mutex
	procs []*proc
	tally tally
}

// proc is one worker process.
type proc struct {
	index  int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	killed bool          // by the scenario, on purpose; guarded by scenario.mu
	done   chan struct{} // closed once it exited and its output is read
	err    error         // Wait's result, set before done closes
}

// phases of the probe events.
const (
	phaseBefore = "before the kill"
	phaseDuring = "while the worker was dead"
	phaseAfter  = "after the restart"
)

// logf writes one progress line.
func (sc *scenario) logf(format string, args ...any) {
	if sc.Log == nil {
		return
	}
	sc.tally.mu.Lock() // one writer at a time, with the workers' lines
	defer sc.tally.mu.Unlock()
	fmt.Fprintf(sc.Log, format+"\n", args...)
}

// start starts worker index.
func (sc *scenario) start(ctx context.Context, index int, channels []string) (*proc, error) {
	o := workerOptions{
		Index: index, Processes: sc.Processes, Shards: sc.Shards, MaxConcurrency: sc.MaxConcurrency,
		Redis: sc.Redis, APIBase: sc.Mock.APIBase(), Channels: channels,
		REST: sc.REST, Concurrency: sc.RESTConcurrency,
		JSON: true, StopOnEOF: true, Timeout: 5 * time.Minute,
	}
	cmd := sc.Command(ctx, workerArgs(o))
	cmd.WaitDelay = 5 * time.Second
	if sc.WorkerStderr != nil {
		cmd.Stderr = sc.WorkerStderr(index)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting worker %d: %w", index, err)
	}
	p := &proc{index: index, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	sc.mu.Lock()
	sc.procs = append(sc.procs, p)
	sc.mu.Unlock()
	go func() {
		defer close(p.done)
		sc.read(p, stdout)
		p.err = cmd.Wait()
		sc.mu.Lock()
		killed := p.killed
		sc.mu.Unlock()
		sc.tally.exited(p.cmd.Process.Pid, index, p.err, killed)
	}()
	return p, nil
}

// read turns the worker's stdout into reports until it closes.
func (sc *scenario) read(p *proc, stdout io.Reader) {
	s := bufio.NewScanner(stdout)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		var r report
		if err := json.Unmarshal(s.Bytes(), &r); err != nil || r.Kind == "" {
			sc.logf("worker %d: %s", p.index, s.Text()) // not a report
			continue
		}
		sc.tally.add(r, sc.Log)
	}
	_, _ = io.Copy(io.Discard, stdout)
}

// kill kills p with SIGKILL and waits for it to exit.
func (sc *scenario) kill(p *proc) {
	sc.mu.Lock()
	p.killed = true
	sc.mu.Unlock()
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop closes p's stdin, which makes it close its State and exit, and
// kills it if it has not exited within grace.
func (sc *scenario) stop(p *proc, grace time.Duration) error {
	_ = p.stdin.Close()
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		sc.kill(p)
		return fmt.Errorf("worker %d did not stop within %v; killed", p.index, grace)
	}
}

// KillAll kills every worker still running and waits for them. It is
// idempotent; Run calls it before returning, and tests register it with
// t.Cleanup too.
func (sc *scenario) KillAll() {
	sc.mu.Lock()
	procs := slices.Clone(sc.procs)
	sc.mu.Unlock()
	for _, p := range procs {
		select {
		case <-p.done:
		default:
			sc.kill(p)
		}
	}
}

// Run plays the scenario. It returns the summary, complete or not, and
// the error that stopped it early, if any. Every worker has exited when
// it returns.
func (sc *scenario) Run(ctx context.Context) (*summary, error) {
	defer sc.KillAll()
	sc.tally.init()
	sum := &summary{Processes: sc.Processes, Shards: sc.Shards, MaxConcurrency: sc.MaxConcurrency,
		IdentifyInterval: sc.IdentifyInterval, Victim: -1}
	began := time.Now()
	err := sc.play(ctx, sum)
	sum.Duration = time.Since(began)
	sc.KillAll()
	if aerr := sc.analyze(context.WithoutCancel(ctx), sum); aerr != nil {
		err = errors.Join(err, aerr)
	}
	return sum, err
}

func (sc *scenario) play(ctx context.Context, sum *summary) error {
	channels, err := sc.Mock.Channels(ctx)
	if err != nil {
		return err
	}
	sc.logf("== %d workers, %d shards, max_concurrency %d, REST load %d calls each over %d channels",
		sc.Processes, sc.Shards, sc.MaxConcurrency, sc.REST, len(channels))
	procs := make([]*proc, sc.Processes)
	for i := range procs {
		if procs[i], err = sc.start(ctx, i, channels); err != nil {
			return err
		}
	}
	rounds := (sc.Shards + sc.MaxConcurrency - 1) / sc.MaxConcurrency
	connectWithin := time.Duration(rounds)*max(sc.IdentifyInterval, 5*time.Second) + 45*time.Second
	pids := func(ps ...*proc) []int {
		var out []int
		for _, p := range ps {
			out = append(out, p.cmd.Process.Pid)
		}
		return out
	}
	if err := sc.tally.waitConnected(ctx, connectWithin, pids(procs...)...); err != nil {
		return err
	}
	sc.logf("== every worker is connected")

	var next int64
	probe := func(phase string) error {
		sc.logf("== probing every shard %s: %d events each", phase, sc.Probes)
		for shard := range sc.Shards {
			for range sc.Probes {
				next++
				n, err := sc.Mock.Probe(ctx, shard, next)
				if err != nil {
					return err
				}
				sc.tally.sent(next, shard, phase, n)
			}
		}
		return nil
	}
	if err := probe(phaseBefore); err != nil {
		return err
	}
	if err := sc.tally.waitReceived(ctx, 30*time.Second); err != nil {
		return err
	}

	if sc.Kill {
		victim := min(1, sc.Processes-1)
		sum.Victim = victim
		sum.VictimShards = sc.tally.shardsOf(procs[victim].cmd.Process.Pid)
		sc.logf("== killing worker %d (pid %d) with SIGKILL: its shards %v lose their connections without a close",
			victim, procs[victim].cmd.Process.Pid, sum.VictimShards)
		sc.kill(procs[victim])
		sum.KilledAt = time.Now()
		if err := sc.waitDisconnected(ctx, sum.VictimShards, 15*time.Second); err != nil {
			return err
		}
		if err := probe(phaseDuring); err != nil {
			return err
		}
		sc.logf("== starting worker %d again", victim)
		if procs[victim], err = sc.start(ctx, victim, channels); err != nil {
			return err
		}
		sum.RestartedPID = procs[victim].cmd.Process.Pid
		if err := sc.tally.waitConnected(ctx, connectWithin, sum.RestartedPID); err != nil {
			return err
		}
		if err := probe(phaseAfter); err != nil {
			return err
		}
	}
	if err := sc.tally.waitReceived(ctx, 30*time.Second); err != nil {
		return err
	}
	if err := sc.tally.waitRESTDone(ctx, 120*time.Second, pids(procs...)...); err != nil {
		return err
	}
	sc.logf("== stopping the workers")
	var errs []error
	for _, p := range procs {
		errs = append(errs, sc.stop(p, 20*time.Second))
	}
	return errors.Join(errs...)
}

// waitDisconnected waits until the mock sees no connection on the shards'
// sessions, so that the next probes are kept for replay.
func (sc *scenario) waitDisconnected(ctx context.Context, shards []int, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		sessions, err := sc.Mock.Sessions(ctx)
		if err != nil {
			return err
		}
		connected := 0
		for _, s := range sessions {
			if s.ShardCount == sc.Shards && slices.Contains(shards, s.Shard) && s.Connected {
				connected++
			}
		}
		if connected == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the mock still sees %d connections of the killed worker: %w", connected, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// prefixWriter writes every whole line with a prefix; exec.Cmd copies a
// worker's stderr into one.
type prefixWriter struct {
	prefix string
	w      io.Writer

	mu  sync.Mutex
	buf []byte
}

// Write buffers p and writes out the whole lines.
func (pw *prefixWriter) Write(p []byte) (int, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.buf = append(pw.buf, p...)
	for {
		i := bytes.IndexByte(pw.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := append([]byte(pw.prefix), pw.buf[:i+1]...)
		pw.buf = pw.buf[i+1:]
		if _, err := pw.w.Write(line); err != nil {
			return len(p), err
		}
	}
}
