package cordkit

import (
	"fmt"

	"github.com/cordkit/cordkit/protocols"
)

// ShardsForProcess returns the shard IDs that process (counted from 0) of
// processes runs, out of shardCount shards whose identifies Discord
// spaces in maxConcurrency buckets (shard_id % max_concurrency, one
// identify per bucket per 5 seconds; discord-protocol.md §C.14). Every
// shard goes to exactly one process; the IDs come in ascending order,
// which is the order to start them in.
//
// Each process gets a contiguous range of IDs, the ranges differing in
// length by at most one. Consecutive IDs fall in consecutive buckets, so a
// range of n shards spreads over min(n, maxConcurrency) buckets with at
// most ceil(n/maxConcurrency) shards in any one: the fewest 5-second
// rounds any process can need. A process that starts alone (say, after a
// restart) identifies in every bucket at once, and when all start
// together no process waits on a bucket that another fills with its own
// shards: each bucket's queue holds about as many shards of every process.
//
// For example, with 64 shards, max_concurrency 16 and 4 processes, process
// 1 runs shards 16-31, one in each bucket: it identifies all of them in
// one round. Dealing shards out round-robin (shard % processes) would give
// it 1, 5, 9, ..., 61: four shards in each of buckets 1, 5, 9 and 13 and
// none in the other twelve, so it would take four rounds (15 s) even
// alone, leaving twelve buckets idle. With 64 shards, max_concurrency 16
// and 3 processes, the ranges are 0-20, 21-41 and 42-63: each process has
// two shards in five or six buckets and one in the others, and those
// buckets differ between processes.
//
// It returns a *[ConfigError] (matching [ErrInvalidConfig] and
// [protocols.ErrInvalidShard]) when processes or shardCount is below 1,
// process is outside [0, processes), maxConcurrency is below 1, or there
// are more processes than shards.
func ShardsForProcess(process, processes, shardCount, maxConcurrency int) ([]int, error) {
	invalid := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{protocols.ErrInvalidShard}, args...)...)}
	}
	switch {
	case processes < 1:
		return nil, invalid("processes", "%d processes, want at least 1", processes)
	case process < 0 || process >= processes:
		return nil, invalid("process", "process %d is outside 0-%d", process, processes-1)
	case shardCount < 1:
		return nil, invalid("shardCount", "%d shards, want at least 1", shardCount)
	case maxConcurrency < 1:
		return nil, invalid("maxConcurrency", "max concurrency %d, want at least 1", maxConcurrency)
	case processes > shardCount:
		return nil, invalid("processes", "%d processes for %d shards: some would run none", processes, shardCount)
	}
	// Process i runs [i*shardCount/processes, (i+1)*shardCount/processes).
	// The products stay far from overflowing: Discord counts shards in
	// the thousands.
	first := process * shardCount / processes
	end := (process + 1) * shardCount / processes
	ids := make([]int, 0, end-first)
	for id := first; id < end; id++ {
		ids = append(ids, id)
	}
	return ids, nil
}
