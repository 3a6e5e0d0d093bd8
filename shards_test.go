package cordkit_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/protocols"
)

func TestShardsForProcess(t *testing.T) {
	tests := []struct {
		name                                        string
		process, processes, shardCount, concurrency int
		want                                        []int
	}{
		{"OneProcessRunsAll", 0, 1, 4, 1, []int{0, 1, 2, 3}},
		{"WholeRows", 1, 4, 64, 16, shardSpan(16, 32)},
		{"UnevenFirst", 0, 3, 64, 16, shardSpan(0, 21)},
		{"UnevenLast", 2, 3, 64, 16, shardSpan(42, 64)},
		{"FewerShardsThanBuckets", 3, 4, 16, 16, []int{12, 13, 14, 15}},
		{"OneShardEach", 2, 3, 3, 1, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cordkit.ShardsForProcess(tt.process, tt.processes, tt.shardCount, tt.concurrency)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func shardSpan(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// TestShardsForProcessSpreadsBuckets checks, for many layouts, that every
// shard runs in exactly one process, that the processes' loads differ by
// at most one, and that no process has more shards in one bucket than its
// load requires: ceil(load / max_concurrency).
func TestShardsForProcessSpreadsBuckets(t *testing.T) {
	for shards := 1; shards <= 80; shards++ {
		for processes := 1; processes <= min(shards, 9); processes++ {
			for _, mc := range []int{1, 2, 3, 4, 16, 32} {
				seen := make([]int, shards)
				minLoad, maxLoad := shards, 0
				for p := range processes {
					ids, err := cordkit.ShardsForProcess(p, processes, shards, mc)
					require.NoError(t, err)
					require.True(t, slices.IsSorted(ids))
					perBucket := map[int]int{}
					for _, id := range ids {
						seen[id]++
						perBucket[id%mc]++
					}
					limit := (len(ids) + mc - 1) / mc
					for b, n := range perBucket {
						if n > limit {
							t.Errorf("%d shards, %d processes, max_concurrency %d: process %d has %d shards in bucket %d, want at most %d", shards, processes, mc, p, n, b, limit)
						}
					}
					minLoad, maxLoad = min(minLoad, len(ids)), max(maxLoad, len(ids))
				}
				for id, n := range seen {
					if n != 1 {
						t.Errorf("%d shards, %d processes: shard %d runs in %d processes, want 1", shards, processes, id, n)
					}
				}
				if maxLoad-minLoad > 1 {
					t.Errorf("%d shards, %d processes: loads from %d to %d, want at most one apart", shards, processes, minLoad, maxLoad)
				}
			}
		}
	}
}

func TestShardsForProcessInvalid(t *testing.T) {
	tests := []struct {
		name                                        string
		process, processes, shardCount, concurrency int
		field                                       string
	}{
		{"NoProcesses", 0, 0, 4, 1, "processes"},
		{"NegativeProcess", -1, 2, 4, 1, "process"},
		{"ProcessTooHigh", 2, 2, 4, 1, "process"},
		{"NoShards", 0, 1, 0, 1, "shardCount"},
		{"NoConcurrency", 0, 1, 4, 0, "maxConcurrency"},
		{"MoreProcessesThanShards", 0, 5, 4, 1, "processes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cordkit.ShardsForProcess(tt.process, tt.processes, tt.shardCount, tt.concurrency)
			assert.Nil(t, got)
			assert.ErrorIs(t, err, cordkit.ErrInvalidConfig)
			assert.ErrorIs(t, err, protocols.ErrInvalidShard)
			var ce *cordkit.ConfigError
			if assert.True(t, errors.As(err, &ce)) {
				assert.Equal(t, tt.field, ce.Field)
			}
		})
	}
}

// Four processes share a bot of 64 shards whose max_concurrency is 16:
// each runs one shard in every identify bucket, so it identifies all of
// them in one 5-second round.
func ExampleShardsForProcess() {
	for process := range 4 {
		ids, err := cordkit.ShardsForProcess(process, 4, 64, 16)
		if err != nil {
			fmt.Println(err)
			return
		}
		buckets := map[int]bool{}
		for _, id := range ids {
			buckets[id%16] = true
		}
		fmt.Printf("process %d: shards %d-%d, %d buckets\n", process, ids[0], ids[len(ids)-1], len(buckets))
	}
	// Output:
	// process 0: shards 0-15, 16 buckets
	// process 1: shards 16-31, 16 buckets
	// process 2: shards 32-47, 16 buckets
	// process 3: shards 48-63, 16 buckets
}
