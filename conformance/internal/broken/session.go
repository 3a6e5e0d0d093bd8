package broken

import (
	"context"
	"errors"

	"github.com/cordkit/cordkit/protocols"
)

// anyCount is the shard count IgnoreCount stores every session under.
const anyCount = 1 << 20

// IgnoreCount keys sessions by shard ID alone, so a session saved under
// one shard count is resumed under another. It breaks "Load returns the
// session of shard id out of count, or an error wrapping [ErrNoSession]."
// and fails TestSessionStore/ShardCountIsPartOfKey.
func IgnoreCount(next protocols.SessionStore) protocols.SessionStore { return countless{next} }

type countless struct{ next protocols.SessionStore }

func (s countless) Load(ctx context.Context, id, count int) (protocols.Session, error) {
	got, err := s.next.Load(ctx, id, anyCount)
	got.ShardCount = count
	return got, err
}

func (s countless) Save(ctx context.Context, sess protocols.Session) error {
	sess.ShardCount = anyCount
	return s.next.Save(ctx, sess)
}

func (s countless) Delete(ctx context.Context, id, _ int) error {
	return s.next.Delete(ctx, id, anyCount)
}

// ZeroForMissing returns an empty session and no error when none is
// stored, so a shard "resumes" a session with no ID. It breaks "Load
// returns the session of shard id out of count, or an error wrapping
// [ErrNoSession]." and fails TestSessionStore/LoadMissingIsErrNoSession and
// DeleteForgets.
func ZeroForMissing(next protocols.SessionStore) protocols.SessionStore { return zeroing{next} }

type zeroing struct{ protocols.SessionStore }

func (s zeroing) Load(ctx context.Context, id, count int) (protocols.Session, error) {
	got, err := s.SessionStore.Load(ctx, id, count)
	if errors.Is(err, protocols.ErrNoSession) {
		return protocols.Session{ShardID: id, ShardCount: count}, nil
	}
	return got, err
}
