package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cordkit/cordkit/protocols"
)

var _ protocols.SessionStore = (*sessionStore)(nil)

// SessionTTL is how long a stored session lives after its last Save.
//
// Discord keeps a session whose connection dropped resumable for "a few
// minutes" (discord-protocol.md §D) and documents no exact number. The
// store cannot know when the process that saved a session died, only when
// it last saved, and a shard saves on READY, on RESUMED and after
// heartbeats that saw new events, so a quiet shard may go a while between
// saves. SessionTTL covers both: past it, a session is almost surely
// useless. Keeping one too long costs little (the RESUME fails with op 9
// and the shard identifies); dropping one too early costs an identify from
// the daily budget.
const SessionTTL = 15 * time.Minute

// NewSessionStore returns a [protocols.SessionStore] in Redis, so that a
// restarted process, or another process given the same shards, resumes
// instead of identifying.
//
// Sessions are keyed by (ShardID, ShardCount): the key of shard 3 of 16
// is "cordkit:{ns}:session:16:3", a hash of the session ID, sequence and
// resume URL that every Save replaces at once (a Lua script) and gives a
// TTL of [SessionTTL]. Load returns an error wrapping
// [protocols.ErrNoSession] when nothing is stored, or the session expired.
// Save returns one wrapping [protocols.ErrInvalidShard] when the
// session's shard is not within its count.
//
// Each call is one round trip bounded by [Options.Timeout]; a Redis
// failure is returned, not retried: the shard treats a failed Load as no
// session and a failed Save as a lost chance to resume. Every method
// returns an error wrapping ctx.Err() when ctx has already ended.
func (o Options) NewSessionStore() (protocols.SessionStore, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &sessionStore{o: o}, nil
}

type sessionStore struct{ o Options }

func (s *sessionStore) key(id, count int) string {
	return s.o.key("session", strconv.Itoa(count), strconv.Itoa(id))
}

func (s *sessionStore) Load(ctx context.Context, id, count int) (protocols.Session, error) {
	if err := ctx.Err(); err != nil {
		return protocols.Session{}, fmt.Errorf("redis: load session: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.o.timeout())
	defer cancel()
	vals, err := s.o.Client.HMGet(cctx, s.key(id, count), "id", "seq", "url").Result()
	if err != nil {
		return protocols.Session{}, fmt.Errorf("redis: load session of shard %d/%d: %w", id, count, err)
	}
	sid, ok1 := vals[0].(string)
	seqText, ok2 := vals[1].(string)
	url, ok3 := vals[2].(string)
	if !ok1 || !ok2 || !ok3 {
		return protocols.Session{}, fmt.Errorf("redis: shard %d/%d: %w", id, count, protocols.ErrNoSession)
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil {
		return protocols.Session{}, fmt.Errorf("redis: load session of shard %d/%d: bad sequence %q: %w", id, count, seqText, err)
	}
	return protocols.Session{ShardID: id, ShardCount: count, ID: sid, Seq: seq, ResumeURL: url}, nil
}

func (s *sessionStore) Save(ctx context.Context, sess protocols.Session) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: save session: %w", err)
	}
	if sess.ShardID < 0 || sess.ShardCount < 1 || sess.ShardID >= sess.ShardCount {
		return fmt.Errorf("redis: save session: shard %d/%d: %w", sess.ShardID, sess.ShardCount, protocols.ErrInvalidShard)
	}
	cctx, cancel := context.WithTimeout(ctx, s.o.timeout())
	defer cancel()
	err := sessionSave.Run(cctx, s.o.Client, []string{s.key(sess.ShardID, sess.ShardCount)},
		sess.ID, strconv.FormatInt(sess.Seq, 10), sess.ResumeURL, SessionTTL.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("redis: save session of shard %d/%d: %w", sess.ShardID, sess.ShardCount, err)
	}
	return nil
}

func (s *sessionStore) Delete(ctx context.Context, id, count int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis: delete session: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.o.timeout())
	defer cancel()
	if err := s.o.Client.Del(cctx, s.key(id, count)).Err(); err != nil {
		return fmt.Errorf("redis: delete session of shard %d/%d: %w", id, count, err)
	}
	return nil
}

// sessionSave replaces a session and sets its TTL, at once.
// KEYS: 1 session. ARGV: 1 id, 2 seq, 3 resume URL, 4 TTL.
var sessionSave = goredis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'seq', ARGV[2], 'url', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 0
`)
