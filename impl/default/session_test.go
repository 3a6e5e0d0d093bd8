package reference_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	reference "github.com/cordkit/cordkit/impl/default"
	"github.com/cordkit/cordkit/protocols"
)

func TestSessionStore(t *testing.T) {
	stores := []struct {
		name string
		new  func(t *testing.T) protocols.SessionStore
	}{
		{"Memory", func(*testing.T) protocols.SessionStore { return reference.NewSessionStore() }},
		{"File", func(t *testing.T) protocols.SessionStore {
			s, err := reference.NewFileSessionStore(filepath.Join(t.TempDir(), "sessions.json"))
			require.NoError(t, err)
			return s
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := t.Context()
			s := st.new(t)
			_, err := s.Load(ctx, 0, 2)
			require.ErrorIs(t, err, protocols.ErrNoSession)

			a := protocols.Session{ShardID: 0, ShardCount: 2, ID: "abc", Seq: 42, ResumeURL: "wss://resume.example"}
			require.NoError(t, s.Save(ctx, a))
			got, err := s.Load(ctx, 0, 2)
			require.NoError(t, err)
			assert.Equal(t, a, got)

			_, err = s.Load(ctx, 0, 4)
			assert.ErrorIs(t, err, protocols.ErrNoSession, "the same shard ID under another count is another session")

			a.Seq = 43
			require.NoError(t, s.Save(ctx, a))
			got, _ = s.Load(ctx, 0, 2)
			assert.Equal(t, int64(43), got.Seq, "Save replaces")

			got.ID = "changed"
			again, _ := s.Load(ctx, 0, 2)
			assert.Equal(t, "abc", again.ID, "values are copies")

			require.NoError(t, s.Delete(ctx, 0, 2))
			require.NoError(t, s.Delete(ctx, 0, 2), "deleting nothing is not an error")
			_, err = s.Load(ctx, 0, 2)
			assert.ErrorIs(t, err, protocols.ErrNoSession)

			assert.ErrorIs(t, s.Save(ctx, protocols.Session{ShardID: 2, ShardCount: 2}), protocols.ErrInvalidShard)
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			assert.ErrorIs(t, s.Save(cctx, a), context.Canceled)
			_, err = s.Load(cctx, 0, 2)
			assert.ErrorIs(t, err, context.Canceled)
			assert.ErrorIs(t, s.Delete(cctx, 0, 2), context.Canceled)
		})
	}
}

func TestFileSessionStoreSurvivesRestart(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sessions.json")
	s, err := reference.NewFileSessionStore(path)
	require.NoError(t, err)
	sessions := []protocols.Session{
		{ShardID: 0, ShardCount: 2, ID: "s0", Seq: 10, ResumeURL: "wss://a"},
		{ShardID: 1, ShardCount: 2, ID: "s1", Seq: 11, ResumeURL: "wss://b"},
		{ShardID: 3, ShardCount: 4, ID: "s3", Seq: 12, ResumeURL: "wss://c"},
	}
	for _, x := range sessions {
		require.NoError(t, s.Save(ctx, x))
	}
	require.NoError(t, s.Delete(ctx, 1, 2))

	restarted, err := reference.NewFileSessionStore(path)
	require.NoError(t, err)
	for _, want := range []protocols.Session{sessions[0], sessions[2]} {
		got, err := restarted.Load(ctx, want.ShardID, want.ShardCount)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err = restarted.Load(ctx, 1, 2)
	assert.ErrorIs(t, err, protocols.ErrNoSession)

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")
}

func TestFileSessionStoreErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte("{not json"), 0o600))
	_, err := reference.NewFileSessionStore(bad)
	assert.Error(t, err, "a corrupt file")

	// A store whose directory disappears fails to save and keeps its state.
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o700))
	s, err := reference.NewFileSessionStore(filepath.Join(sub, "sessions.json"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(sub))
	err = s.Save(t.Context(), protocols.Session{ShardID: 0, ShardCount: 1, ID: "x"})
	assert.Error(t, err)
	_, err = s.Load(t.Context(), 0, 1)
	assert.ErrorIs(t, err, protocols.ErrNoSession, "a failed save is rolled back")
}

func TestSessionStoreConcurrentSafe(t *testing.T) {
	s, err := reference.NewFileSessionStore(filepath.Join(t.TempDir(), "sessions.json"))
	require.NoError(t, err)
	stores := []protocols.SessionStore{reference.NewSessionStore(), s}
	for _, s := range stores {
		var wg sync.WaitGroup
		for id := range 8 {
			wg.Go(func() {
				for seq := range 20 {
					assert.NoError(t, s.Save(t.Context(), protocols.Session{ShardID: id, ShardCount: 8, ID: "x", Seq: int64(seq)}))
					_, _ = s.Load(t.Context(), id, 8)
					if seq%5 == 0 {
						assert.NoError(t, s.Delete(t.Context(), id, 8))
					}
				}
			})
		}
		wg.Wait()
		for id := range 8 {
			got, err := s.Load(t.Context(), id, 8)
			require.NoError(t, err)
			assert.Equal(t, int64(19), got.Seq)
		}
	}
}
