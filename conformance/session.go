package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cordkit/cordkit/protocols"
)

// Rule sentences of the SessionStore suite, quoted from package protocols.
const (
	ruleStoreLoad   = "Load returns the session of shard id out of count, or an error wrapping [ErrNoSession]."
	ruleStoreSave   = "Save stores s, replacing the shard's previous session."
	ruleStoreDelete = "Delete forgets the shard's session; deleting nothing is not an error."
	ruleStoreSafe   = "A SessionStore must be safe for concurrent use."
)

// TestSessionStore tests a [protocols.SessionStore] implementation.
// newStore is called once per subtest, inside the subtest's synctest
// bubble, and must return an empty store (for a store kept in a file, one
// in t.TempDir()). The suite saves sessions of valid shards only: ShardID
// within [0, ShardCount).
func TestSessionStore(t *testing.T, newStore func(t *testing.T) protocols.SessionStore) {
	t.Helper()
	Options{}.TestSessionStore(t, newStore)
}

// TestSessionStore is [TestSessionStore] with options.
func (o Options) TestSessionStore(t *testing.T, newStore func(t *testing.T) protocols.SessionStore) {
	t.Helper()
	runRules(t, o, "TestSessionStore", sessionRules, func(t *testing.T) func() protocols.SessionStore {
		return func() protocols.SessionStore {
			t.Helper()
			s := newStore(t)
			if s == nil {
				t.Fatal("conformance: newStore returned nil")
			}
			return s
		}
	})
}

// session returns a realistic session of shard id out of count.
func session(id, count int, seq int64) protocols.Session {
	return protocols.Session{
		ShardID:    id,
		ShardCount: count,
		ID:         fmt.Sprintf("3f0c6f2c5b9e4d7aa1b2c3d4e5f6%02x%02x", id%256, count%256),
		Seq:        seq,
		ResumeURL:  fmt.Sprintf("wss://gateway-us-east1-%c.discord.gg", 'a'+rune(id%4)),
	}
}

// mustSave saves s and fails the case on an error.
func mustSave(t *caseT, store protocols.SessionStore, s protocols.Session) {
	t.Helper()
	if err := store.Save(t.ctx, s); err != nil {
		t.Fatalf("SessionStore.Save(shard %d/%d): got error %v", s.ShardID, s.ShardCount, err)
	}
}

// mustLoad loads the session of shard id/count and fails the case unless
// it is want.
func mustLoad(t *caseT, what string, store protocols.SessionStore, want protocols.Session) {
	t.Helper()
	got, err := store.Load(t.ctx, want.ShardID, want.ShardCount)
	switch {
	case err != nil:
		t.Errorf("%s: SessionStore.Load(%d, %d): got error %v, want %+v", what, want.ShardID, want.ShardCount, err, want)
	case got != want:
		t.Errorf("%s: SessionStore.Load(%d, %d): got %+v, want %+v", what, want.ShardID, want.ShardCount, got, want)
	}
}

// mustMiss checks that Load of shard id/count fails with ErrNoSession.
func mustMiss(t *caseT, what string, store protocols.SessionStore, id, count int) {
	t.Helper()
	got, err := store.Load(t.ctx, id, count)
	if !errors.Is(err, protocols.ErrNoSession) {
		t.Errorf("%s: SessionStore.Load(%d, %d): got %+v, error %v; want an error wrapping protocols.ErrNoSession", what, id, count, got, err)
	}
}

var sessionRules = []rule[func() protocols.SessionStore]{
	{
		name: "LoadMissingIsErrNoSession",
		rule: ruleStoreLoad,
		run: func(t *caseT, newStore func() protocols.SessionStore) {
			store := newStore()
			mustMiss(t, "empty store", store, 0, 1)
			mustSave(t, store, session(0, 2, 10))
			mustMiss(t, "after saving shard 0/2", store, 1, 2)
		},
	},
	{
		name: "SaveThenLoad",
		rule: ruleStoreSave,
		run: func(t *caseT, newStore func() protocols.SessionStore) {
			store := newStore()
			for _, s := range []protocols.Session{
				session(3, 16, 9223372036854775807),
				session(0, 1, 0),
				{ShardID: 1, ShardCount: 2, ID: "session \u00e9 \"quoted\"", Seq: 1, ResumeURL: "wss://gateway.discord.gg/?v=10&encoding=json"},
			} {
				mustSave(t, store, s)
				mustLoad(t, "after Save", store, s)
			}
		},
	},
	{
		name: "SaveReplaces",
		rule: ruleStoreSave,
		run: func(t *caseT, newStore func() protocols.SessionStore) {
			store := newStore()
			mustSave(t, store, session(2, 4, 100))
			next := session(2, 4, 250)
			next.ID, next.ResumeURL = "a new session", "wss://gateway-us-east1-d.discord.gg"
			mustSave(t, store, next)
			mustLoad(t, "after a second Save of the shard", store, next)
		},
	},
	{
		name: "ShardsAreIndependent",
		rule: ruleStoreSave,
		run: func(t *caseT, newStore func() protocols.SessionStore) {
			store := newStore()
			for id := range 8 {
				mustSave(t, store, session(id, 8, int64(1000+id)))
			}
			mustSave(t, store, session(3, 8, 5000))
			if err := store.Delete(t.ctx, 5, 8); err != nil {
				t.Fatalf("SessionStore.Delete(5, 8): got error %v", err)
			}
			for id := range 8 {
				switch id {
				case 3:
					mustLoad(t, "shard 3/8, saved again", store, session(3, 8, 5000))
				case 5:
					mustMiss(t, "shard 5/8, deleted", store, 5, 8)
				default:
					mustLoad(t, fmt.Sprintf("shard %d/8, beside shards saved and deleted", id), store, session(id, 8, int64(1000+id)))
				}
			}
		},
	},
	{
		name: "ShardCountIsPartOfKey",
		rule: ruleStoreLoad,
		run: func(t *caseT, newStore func() protocols.SessionStore) {
			store := newStore()
			one, two := session(0, 1, 11), session(0, 2, 22)
			mustSave(t, store, one)
			mustSave(t, store, two)
			mustLoad(t, "shard 0 of 1, beside shard 0 of 2", store, one)
			mustLoad(t, "shard 0 of 2, beside shard 0 of 1", store, two)
			mustMiss(t, "shard 0 of 4, when shards 0 of 1 and 0 of 2 are stored", store, 0, 4)
			if err := store.Delete(t.ctx, 0, 2); err != nil {
				t.Fatalf("SessionStore.Delete(0, 2): got error %v", err)
			}
			mustLoad(t, "shard 0 of 1, after shard 0 of 2 was deleted", store, one)
			mustMiss(t, "shard 0 of 2, deleted", store, 0, 2)
		},
	},
	{
		name: "DeleteForgets",
		rule: ruleStoreDelete,
		run: func(t *caseT, newStore func() protocols.SessionStore) {
			store := newStore()
			mustSave(t, store, session(1, 4, 7))
			if err := store.Delete(t.ctx, 1, 4); err != nil {
				t.Fatalf("SessionStore.Delete(1, 4): got error %v", err)
			}
			mustMiss(t, "after Delete", store, 1, 4)
			mustSave(t, store, session(1, 4, 8))
			mustLoad(t, "saved again after Delete", store, session(1, 4, 8))
		},
	},
	{
		name: "DeleteMissingIsNoError",
		rule: ruleStoreDelete,
		run: func(t *caseT, newStore func() protocols.SessionStore) {
			store := newStore()
			for i := range 2 {
				if err := store.Delete(t.ctx, 5, 8); err != nil {
					t.Errorf("SessionStore.Delete(5, 8) (call %d, nothing stored): got error %v, want nil", i+1, err)
				}
			}
			mustSave(t, store, session(5, 8, 1))
			for i := range 2 {
				if err := store.Delete(t.ctx, 5, 8); err != nil {
					t.Errorf("SessionStore.Delete(5, 8) (call %d after a Save): got error %v, want nil", i+1, err)
				}
			}
		},
	},
	{
		name: "ConcurrentSafeSessionStore",
		rule: ruleStoreSafe,
		run: func(t *caseT, newStore func() protocols.SessionStore) {
			store := newStore()
			const shards, rounds = 16, 20
			var wg sync.WaitGroup
			errs := make(chan error, shards)
			for id := range shards {
				wg.Go(func() {
					errs <- func() error {
						for r := range rounds {
							s := session(id, shards, int64(r))
							if err := store.Save(t.ctx, s); err != nil {
								return fmt.Errorf("SessionStore.Save(shard %d/%d): %w", id, shards, err)
							}
							got, err := store.Load(t.ctx, id, shards)
							if err != nil {
								return fmt.Errorf("SessionStore.Load(%d, %d) right after its Save: %w", id, shards, err)
							}
							if got != s {
								return fmt.Errorf("SessionStore.Load(%d, %d) right after its Save, with other shards saving at once: got %+v, want %+v", id, shards, got, s)
							}
							if r%4 == 3 {
								if err := store.Delete(t.ctx, id, shards); err != nil {
									return fmt.Errorf("SessionStore.Delete(%d, %d): %w", id, shards, err)
								}
								if _, err := store.Load(t.ctx, id, shards); !errors.Is(err, protocols.ErrNoSession) {
									return fmt.Errorf("SessionStore.Load(%d, %d) right after its Delete: got error %v, want protocols.ErrNoSession", id, shards, err)
								}
							}
						}
						return nil
					}()
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("%v", err)
				}
			}
		},
	},
}
