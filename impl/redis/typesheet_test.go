package redis_test

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordkit/cordkit/impl/redis"
	"github.com/cordkit/cordkit/internal/redistest"
	"github.com/cordkit/cordkit/protocols"
)

func TestTypeSheet(t *testing.T) {
	s := redistest.Start(t)
	client := goredis.NewClient(&goredis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = client.Close() })

	base := protocols.TypeSheet{NewKeepAlive: func() protocols.KeepAlive { return nil }}
	ts, err := redis.Options{Client: client, Namespace: "typesheet"}.TypeSheet(base)
	require.NoError(t, err)
	assert.NotNil(t, ts.NewRateLimiter)
	assert.NotNil(t, ts.NewIdentifyLimiter)
	assert.NotNil(t, ts.NewKeepAlive, "the other fields are kept")
	require.NotNil(t, ts.SessionStore)

	sess := protocols.Session{ShardID: 0, ShardCount: 1, ID: "s", Seq: 1, ResumeURL: "wss://example"}
	require.NoError(t, ts.SessionStore.Save(t.Context(), sess))
	got, err := ts.SessionStore.Load(t.Context(), 0, 1)
	require.NoError(t, err)
	assert.Equal(t, sess, got)

	l, err := ts.NewIdentifyLimiter(protocols.IdentifyLimiterParams{MaxConcurrency: 1})
	require.NoError(t, err)
	assert.NotNil(t, l)
}

func TestTypeSheetInvalidOptions(t *testing.T) {
	_, err := redis.Options{Namespace: "x"}.TypeSheet(protocols.TypeSheet{})
	assert.ErrorIs(t, err, redis.ErrNoClient)
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	_, err = redis.Options{Client: client}.TypeSheet(protocols.TypeSheet{})
	assert.ErrorIs(t, err, redis.ErrNoNamespace)
}
