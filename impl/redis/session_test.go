package redis_test

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit/impl/redis"
	"github.com/cordkit/cordkit/internal/redistest"
	"github.com/cordkit/cordkit/protocols"
)

// storeFor returns a session store on its own client, as one process
// would have.
func storeFor(t *testing.T, addr, ns string) (protocols.SessionStore, goredis.UniversalClient) {
	t.Helper()
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	store, err := redis.Options{Client: client, Namespace: ns}.NewSessionStore()
	require.NoError(t, err)
	return store, client
}

// TestSessionStoreAcrossProcesses saves a session in one process and
// resumes it in another, as after a restart or a reassignment of shards.
func TestSessionStoreAcrossProcesses(t *testing.T) {
	s := redistest.Start(t)
	a, client := storeFor(t, s.Addr, "sessions")
	b, _ := storeFor(t, s.Addr, "sessions")
	other, _ := storeFor(t, s.Addr, "another-bot")
	sess := protocols.Session{ShardID: 3, ShardCount: 16, ID: "abc", Seq: 42, ResumeURL: "wss://gateway-us-east1-b.discord.gg"}
	require.NoError(t, a.Save(t.Context(), sess))

	got, err := b.Load(t.Context(), 3, 16)
	require.NoError(t, err)
	assert.Equal(t, sess, got)
	_, err = other.Load(t.Context(), 3, 16)
	assert.ErrorIs(t, err, protocols.ErrNoSession, "another namespace is another bot")

	keys := scanTTLs(t, client, "cordkit:{sessions}:*")
	assert.Equal(t, []string{"cordkit:{sessions}:session:16:3"}, keys)
	ttl, err := client.PTTL(t.Context(), keys[0]).Result()
	require.NoError(t, err)
	assert.LessOrEqual(t, ttl, redis.SessionTTL)
	assert.Greater(t, ttl, redis.SessionTTL-time.Minute)

	require.NoError(t, b.Delete(t.Context(), 3, 16))
	_, err = a.Load(t.Context(), 3, 16)
	assert.ErrorIs(t, err, protocols.ErrNoSession)

	err = a.Save(t.Context(), protocols.Session{ShardID: 16, ShardCount: 16})
	assert.ErrorIs(t, err, protocols.ErrInvalidShard)
}

// TestSessionStoreRedisDown returns Redis's error, which is not "no
// session".
func TestSessionStoreRedisDown(t *testing.T) {
	s := redistest.Start(t)
	store, _ := storeFor(t, s.Addr, "down")
	s.Stop()
	_, err := store.Load(t.Context(), 0, 1)
	require.Error(t, err)
	assert.NotErrorIs(t, err, protocols.ErrNoSession)
	assert.Error(t, store.Save(t.Context(), protocols.Session{ShardID: 0, ShardCount: 1, ID: "x"}))
}
