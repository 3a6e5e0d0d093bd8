package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

// summary is what the scenario found, mostly from the mock's
// observations: the mock, not the workers, is the witness.
type summary struct {
	Processes, Shards, MaxConcurrency int
	Duration                          time.Duration
	Parts                             string // what the workers said they run

	// Identify spacing, from the mock's gateway observations.
	Identify         identifyReport
	IdentifyInterval time.Duration

	// The kill: worker Victim (-1: none) ran VictimShards, was killed at
	// KilledAt and came back as RestartedPID.
	Victim       int
	VictimShards []int
	KilledAt     time.Time
	RestartedPID int
	// From the mock: RESUMEs of the victim's shards after the kill,
	// accepted ones, dispatches they replayed, and IDENTIFYs of those
	// shards after the kill (a resume that failed).
	Resumes, ResumesAccepted, Replayed, IdentifiesAfterKill int
	// From the restarted worker's reports: shards RESUMED and IDENTIFIED.
	RestartResumed, RestartIdentified int

	// REST, from the mock's observations.
	REST restReport
	// From the workers: calls done and failed, and 429s their HTTP
	// clients saw (and retried).
	WorkerREST, WorkerRESTFailed, Worker429 int

	// GatewayViolations are the mock's: identify too fast, and the rest.
	GatewayViolations []string

	// Probe events.
	ProbesSent int
	Unsent     []int64        // no session took them
	Missing    []int64        // never handled
	Duplicates map[string]int // handled more than once, by phase
	DupShards  map[int]int    // duplicates by shard
	WrongShard []string       // handled by another shard

	// Failures are the workers' errors and unexpected exits.
	Failures []string
}

// identifyReport describes the IDENTIFYs the mock saw.
type identifyReport struct {
	Total, Accepted int
	// Rejected are the IDENTIFYs the mock refused, with the reason.
	Rejected []string
	// Buckets holds, per bucket (shard_id % max_concurrency), the
	// accepted IDENTIFYs in order.
	Buckets map[int][]identifyAt
	// MinGap is, per bucket, the shortest time between two accepted
	// IDENTIFYs; CrossProcess counts consecutive pairs made by different
	// processes, the pairs only a shared limiter keeps apart.
	MinGap       map[int]time.Duration
	CrossProcess int
}

// identifyAt is one accepted IDENTIFY.
type identifyAt struct {
	Time   time.Time
	Shard  int
	Worker int
}

// analyzeIdentifies reads the IDENTIFYs out of the gateway observations;
// owner maps a shard to the worker running it.
func analyzeIdentifies(obs []mockdiscord.GatewayObservation, owner func(shard int) int) identifyReport {
	r := identifyReport{Buckets: map[int][]identifyAt{}, MinGap: map[int]time.Duration{}}
	for _, o := range obs {
		if o.Kind != mockdiscord.ObserveIdentify {
			continue
		}
		r.Total++
		if !o.Accepted {
			r.Rejected = append(r.Rejected, fmt.Sprintf("%s shard %d: %s", o.Time.Format("15:04:05.000"), o.Shard, o.Reason))
			continue
		}
		r.Accepted++
		r.Buckets[o.Bucket] = append(r.Buckets[o.Bucket], identifyAt{o.Time, o.Shard, owner(o.Shard)})
	}
	for b, ids := range r.Buckets {
		sort.Slice(ids, func(i, j int) bool { return ids[i].Time.Before(ids[j].Time) })
		for i := 1; i < len(ids); i++ {
			gap := ids[i].Time.Sub(ids[i-1].Time)
			if g, ok := r.MinGap[b]; !ok || gap < g {
				r.MinGap[b] = gap
			}
			if ids[i].Worker != ids[i-1].Worker {
				r.CrossProcess++
			}
		}
	}
	return r
}

// TooClose lists the consecutive accepted IDENTIFYs of a bucket closer
// than interval.
func (r identifyReport) TooClose(interval time.Duration) []string {
	var out []string
	for b, ids := range r.Buckets {
		for i := 1; i < len(ids); i++ {
			if gap := ids[i].Time.Sub(ids[i-1].Time); gap < interval {
				out = append(out, fmt.Sprintf("bucket %d: shard %d (worker %d) identified %v after shard %d (worker %d)",
					b, ids[i].Shard, ids[i].Worker, gap.Round(time.Millisecond), ids[i-1].Shard, ids[i-1].Worker))
			}
		}
	}
	slices.Sort(out)
	return out
}

// restReport describes the REST requests the mock saw.
type restReport struct {
	Requests int
	// TooMany counts 429s by scope ("user", "global", "shared", "" for
	// bans and header-less ones).
	TooMany map[string]int
	// Violations lists the 429s and bans a well-behaved client never
	// gets, as mockdiscord's Server.WindowViolations does.
	Violations []string
	// PeakGlobal is the most requests that took global quota in any one
	// second (sliding); the mock allows 50.
	PeakGlobal int
	// Endpoints counts requests by endpoint.
	Endpoints map[string]int
}

// analyzeREST reads the mock's REST observations.
func analyzeREST(obs []mockdiscord.Observation) restReport {
	r := restReport{TooMany: map[string]int{}, Endpoints: map[string]int{}}
	var global []time.Time
	for _, o := range obs {
		r.Requests++
		r.Endpoints[o.Endpoint]++
		if o.Global {
			global = append(global, o.Time)
		}
		if o.Status == http.StatusTooManyRequests {
			r.TooMany[o.Scope]++
		}
		if o.Fault != "" && o.Fault != string(mockdiscord.FaultSlow) {
			continue
		}
		at := o.Time.Format("15:04:05.000")
		switch {
		case o.Banned:
			r.Violations = append(r.Violations, fmt.Sprintf("%s %s %s: banned", at, o.Method, o.Path))
		case o.Status == http.StatusTooManyRequests && (o.Scope == "user" || o.Scope == "global"):
			r.Violations = append(r.Violations, fmt.Sprintf("%s %s %s: 429 %s (group %s)", at, o.Method, o.Path, o.Scope, o.Group))
		}
	}
	slices.SortFunc(global, time.Time.Compare)
	for i, j := 0, 0; j < len(global); j++ {
		for global[j].Sub(global[i]) >= time.Second {
			i++
		}
		r.PeakGlobal = max(r.PeakGlobal, j-i+1)
	}
	return r
}

// analyze fills sum from the tally and the mock's observations.
func (sc *scenario) analyze(ctx context.Context, sum *summary) error {
	t := &sc.tally
	t.mu.Lock()
	sum.ProbesSent = len(t.sentShard)
	sum.Unsent = slices.Clone(t.unsent)
	sum.Missing = t.missingLocked()
	sum.WrongShard = slices.Clone(t.wrong)
	sum.Failures = slices.Clone(t.failures)
	sum.Duplicates, sum.DupShards = map[string]int{}, map[int]int{}
	for id, n := range t.received {
		if n > 1 {
			sum.Duplicates[t.sentPhase[id]] += n - 1
			sum.DupShards[t.sentShard[id]] += n - 1
		}
	}
	for _, r := range t.rest {
		sum.WorkerREST += r.REST
		sum.WorkerRESTFailed += r.Failed
		sum.Worker429 += r.TooMany
	}
	for _, r := range t.identified {
		if r.PID == sum.RestartedPID {
			sum.RestartIdentified++
		}
	}
	for _, r := range t.resumed {
		if r.PID == sum.RestartedPID {
			sum.RestartResumed++
		}
	}
	t.mu.Unlock()
	sum.Parts = sc.parts()

	gobs, err := sc.Mock.GatewayObservations(ctx)
	if err != nil {
		return err
	}
	owners := map[int]int{}
	for i := range sc.Processes {
		shards, _ := shardsForProcess(i, sc.Processes, sc.Shards, sc.MaxConcurrency)
		for _, s := range shards {
			owners[s] = i
		}
	}
	sum.Identify = analyzeIdentifies(gobs, func(s int) int { return owners[s] })
	if !sum.KilledAt.IsZero() {
		sum.Resumes, sum.ResumesAccepted, sum.Replayed, sum.IdentifiesAfterKill = analyzeResumes(gobs, sum.KilledAt, sum.VictimShards)
	}
	if sum.GatewayViolations, err = sc.Mock.GatewayViolations(ctx); err != nil {
		return err
	}
	obs, err := sc.Mock.Observations(ctx)
	if err != nil {
		return err
	}
	sum.REST = analyzeREST(obs)
	return nil
}

// analyzeResumes counts the RESUMEs (all, accepted) and IDENTIFYs of the
// given shards after since, and the dispatches the accepted RESUMEs
// replayed.
func analyzeResumes(obs []mockdiscord.GatewayObservation, since time.Time, shards []int) (resumes, accepted, replayed, identifies int) {
	for _, o := range obs {
		if o.Time.Before(since) || !slices.Contains(shards, o.Shard) {
			continue
		}
		switch o.Kind {
		case mockdiscord.ObserveResume:
			resumes++
			if o.Accepted {
				accepted++
				replayed += o.Replayed
			}
		case mockdiscord.ObserveIdentify:
			identifies++
		}
	}
	return
}

// parts returns what the workers said they run, once per distinct value.
func (sc *scenario) parts() string {
	sc.tally.mu.Lock()
	defer sc.tally.mu.Unlock()
	return sc.tally.partsLocked()
}

// Problems lists every check the run failed; none means the workers
// shared their limits and sessions as they must.
func (s *summary) Problems() []string {
	var out []string
	add := func(cond bool, format string, args ...any) {
		if cond {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	want := s.Shards
	add(s.Identify.Accepted != want, "%d IDENTIFYs accepted, want %d (one per shard, none after the restart)", s.Identify.Accepted, want)
	add(len(s.Identify.Rejected) > 0, "the mock rejected %d IDENTIFYs: %v", len(s.Identify.Rejected), firstFew(s.Identify.Rejected))
	if s.IdentifyInterval > 0 {
		tc := s.Identify.TooClose(s.IdentifyInterval)
		add(len(tc) > 0, "%d IDENTIFYs closer than %v in their bucket: %v", len(tc), s.IdentifyInterval, firstFew(tc))
	}
	add(len(s.GatewayViolations) > 0, "gateway violations: %v", firstFew(s.GatewayViolations))
	if s.Victim >= 0 {
		n := len(s.VictimShards)
		add(n == 0, "the killed worker reported no shards")
		add(s.ResumesAccepted != n || s.Resumes != n, "the killed worker's %d shards: %d RESUMEs after the restart, %d accepted; want %d", n, s.Resumes, s.ResumesAccepted, n)
		add(s.IdentifiesAfterKill > 0, "%d IDENTIFYs of the killed worker's shards after the kill, want 0", s.IdentifiesAfterKill)
		add(s.RestartResumed != n || s.RestartIdentified != 0, "the restarted worker reported %d shards RESUMED and %d IDENTIFIED, want %d and 0", s.RestartResumed, s.RestartIdentified, n)
	}
	add(len(s.REST.Violations) > 0, "%d REST responses a well-behaved client never gets: %v", len(s.REST.Violations), firstFew(s.REST.Violations))
	add(s.REST.TooMany["user"]+s.REST.TooMany["global"]+s.REST.TooMany[""] > 0, "429s from the mock: %v", s.REST.TooMany)
	add(s.Worker429 > 0, "the workers' HTTP clients saw %d 429s", s.Worker429)
	add(s.WorkerRESTFailed > 0, "%d REST calls failed", s.WorkerRESTFailed)
	add(len(s.Unsent) > 0, "%d probes found no session at the mock: %v", len(s.Unsent), firstFew(s.Unsent))
	add(len(s.Missing) > 0, "%d of %d probe events never handled: %v", len(s.Missing), s.ProbesSent, firstFew(s.Missing))
	add(len(s.WrongShard) > 0, "probes on the wrong shard: %v", firstFew(s.WrongShard))
	add(len(s.Failures) > 0, "worker failures: %v", firstFew(s.Failures))
	return out
}

func firstFew[T any](s []T) string {
	const n = 5
	if len(s) <= n {
		return fmt.Sprint(s)
	}
	return fmt.Sprintf("%v and %d more", s[:n], len(s)-n)
}

// Write prints the summary for people.
func (s *summary) Write(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("\n== summary (%v)", s.Duration.Round(100*time.Millisecond))
	p("parts:        %s", s.Parts)
	p("identify:     %d IDENTIFYs, %d accepted, %d rejected by the mock", s.Identify.Total, s.Identify.Accepted, len(s.Identify.Rejected))
	buckets := make([]int, 0, len(s.Identify.Buckets))
	for b := range s.Identify.Buckets {
		buckets = append(buckets, b)
	}
	slices.Sort(buckets)
	for _, b := range buckets {
		var order []string
		for _, id := range s.Identify.Buckets[b] {
			order = append(order, fmt.Sprintf("%d/w%d", id.Shard, id.Worker))
		}
		gap := "-"
		if g, ok := s.Identify.MinGap[b]; ok {
			gap = g.Round(time.Millisecond).String()
		}
		p("  bucket %d:   shard/worker %s; min gap %s", b, strings.Join(order, " "), gap)
	}
	p("              %d consecutive IDENTIFYs of one bucket came from different processes", s.Identify.CrossProcess)
	if s.Victim >= 0 {
		p("kill:         worker %d (shards %v) killed; after the restart the mock saw %d RESUMEs (%d accepted, %d dispatches replayed) and %d IDENTIFYs of those shards",
			s.Victim, s.VictimShards, s.Resumes, s.ResumesAccepted, s.Replayed, s.IdentifiesAfterKill)
	}
	p("REST:         %d requests at the mock, peak %d per second with global quota; 429s %v; workers: %d calls done, %d failed, %d × 429 seen",
		s.REST.Requests, s.REST.PeakGlobal, s.REST.TooMany, s.WorkerREST, s.WorkerRESTFailed, s.Worker429)
	dups := 0
	for _, n := range s.Duplicates {
		dups += n
	}
	p("events:       %d probes sent, %d never handled, %d handled twice or more %v", s.ProbesSent, len(s.Missing), dups, s.Duplicates)
	if probs := s.Problems(); len(probs) > 0 {
		p("PROBLEMS:")
		for _, pr := range probs {
			p("  - %s", pr)
		}
	} else {
		p("OK: identifies spaced per bucket across processes, no 429, the killed worker's shards resumed, every event handled")
	}
}
