package reference

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cordkit/cordkit/protocols"
)

var (
	_ protocols.SessionStore = (*memorySessionStore)(nil)
	_ protocols.SessionStore = (*fileSessionStore)(nil)
)

// sessionKey identifies a shard: the same shard ID under another shard
// count is another session.
type sessionKey struct{ id, count int }

// NewSessionStore returns the reference in-memory [protocols.SessionStore].
// Sessions are keyed by (ShardID, ShardCount) and stored and returned by
// value. It is safe for concurrent use; it does not survive the process
// (see [NewFileSessionStore]).
//
// Save returns an error wrapping [protocols.ErrInvalidShard] when the
// session's shard is not within its count; Load returns one wrapping
// [protocols.ErrNoSession] when nothing is stored. Every method returns an
// error wrapping ctx.Err() when ctx has already ended.
func NewSessionStore() protocols.SessionStore {
	return &memorySessionStore{sessions: make(map[sessionKey]protocols.Session)}
}

type memorySessionStore struct {
	mu       sync.Mutex
	sessions map[sessionKey]protocols.Session
}

func (m *memorySessionStore) Load(ctx context.Context, id, count int) (protocols.Session, error) {
	if err := ctx.Err(); err != nil {
		return protocols.Session{}, fmt.Errorf("reference: load session: %w", err)
	}
	m.mu.Lock()
	s, ok := m.sessions[sessionKey{id, count}]
	m.mu.Unlock()
	if !ok {
		return protocols.Session{}, fmt.Errorf("reference: shard %d/%d: %w", id, count, protocols.ErrNoSession)
	}
	return s, nil
}

func (m *memorySessionStore) Save(ctx context.Context, s protocols.Session) error {
	if err := checkSession(ctx, s); err != nil {
		return err
	}
	m.mu.Lock()
	m.sessions[sessionKey{s.ShardID, s.ShardCount}] = s
	m.mu.Unlock()
	return nil
}

func (m *memorySessionStore) Delete(ctx context.Context, id, count int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reference: delete session: %w", err)
	}
	m.mu.Lock()
	delete(m.sessions, sessionKey{id, count})
	m.mu.Unlock()
	return nil
}

func checkSession(ctx context.Context, s protocols.Session) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reference: save session: %w", err)
	}
	if s.ShardID < 0 || s.ShardCount < 1 || s.ShardID >= s.ShardCount {
		return fmt.Errorf("reference: save session: shard %d/%d: %w", s.ShardID, s.ShardCount, protocols.ErrInvalidShard)
	}
	return nil
}

// NewFileSessionStore returns a [protocols.SessionStore] that keeps its
// sessions in memory and in the JSON file at path, so that a restarted
// process resumes instead of identifying. It reads the file, if there is
// one, and returns an error if the file cannot be read or parsed.
//
// Save and Delete rewrite the whole file atomically: a temporary file in
// the same directory is written, synced and renamed over path, so a crash
// leaves either the old or the new sessions, never a torn file. The file
// is written with mode 0600: a session ID is not a credential, but it is
// nobody else's business. A failed write leaves the store as it was and
// returns the error.
//
// Each Save costs a file write, so a shard should save on READY, on
// RESUMED and when it stops, not on every dispatch. One store owns its
// file: two stores (or processes) on the same path overwrite each other;
// shards spread over processes share sessions through impl/redis instead.
// Otherwise the store behaves like [NewSessionStore].
func NewFileSessionStore(path string) (protocols.SessionStore, error) {
	f := &fileSessionStore{path: path, sessions: make(map[sessionKey]protocols.Session)}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return f, nil
	case err != nil:
		return nil, fmt.Errorf("reference: session file: %w", err)
	}
	var file sessionFile
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("reference: session file %s: %w", path, err)
	}
	for _, r := range file.Sessions {
		s := protocols.Session{ShardID: r.ShardID, ShardCount: r.ShardCount, ID: r.ID, Seq: r.Seq, ResumeURL: r.ResumeURL}
		f.sessions[sessionKey{s.ShardID, s.ShardCount}] = s
	}
	return f, nil
}

// sessionFile is the JSON layout of a session file.
type sessionFile struct {
	Sessions []sessionRecord `json:"sessions"`
}

type sessionRecord struct {
	ShardID    int    `json:"shard_id"`
	ShardCount int    `json:"shard_count"`
	ID         string `json:"session_id"`
	Seq        int64  `json:"seq"`
	ResumeURL  string `json:"resume_gateway_url"`
}

type fileSessionStore struct {
	path     string
	mu       sync.Mutex // guards sessions and serializes file writes
	sessions map[sessionKey]protocols.Session
}

func (f *fileSessionStore) Load(ctx context.Context, id, count int) (protocols.Session, error) {
	if err := ctx.Err(); err != nil {
		return protocols.Session{}, fmt.Errorf("reference: load session: %w", err)
	}
	f.mu.Lock()
	s, ok := f.sessions[sessionKey{id, count}]
	f.mu.Unlock()
	if !ok {
		return protocols.Session{}, fmt.Errorf("reference: shard %d/%d: %w", id, count, protocols.ErrNoSession)
	}
	return s, nil
}

func (f *fileSessionStore) Save(ctx context.Context, s protocols.Session) error {
	if err := checkSession(ctx, s); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := sessionKey{s.ShardID, s.ShardCount}
	old, had := f.sessions[k]
	f.sessions[k] = s
	if err := f.writeLocked(); err != nil {
		if had {
			f.sessions[k] = old
		} else {
			delete(f.sessions, k)
		}
		return err
	}
	return nil
}

func (f *fileSessionStore) Delete(ctx context.Context, id, count int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reference: delete session: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := sessionKey{id, count}
	old, had := f.sessions[k]
	if !had {
		return nil
	}
	delete(f.sessions, k)
	if err := f.writeLocked(); err != nil {
		f.sessions[k] = old
		return err
	}
	return nil
}

// writeLocked replaces the file with the current sessions.
func (f *fileSessionStore) writeLocked() error {
	file := sessionFile{Sessions: make([]sessionRecord, 0, len(f.sessions))}
	for _, s := range f.sessions {
		file.Sessions = append(file.Sessions, sessionRecord{
			ShardID: s.ShardID, ShardCount: s.ShardCount, ID: s.ID, Seq: s.Seq, ResumeURL: s.ResumeURL,
		})
	}
	slices.SortFunc(file.Sessions, func(a, b sessionRecord) int {
		return cmp.Or(cmp.Compare(a.ShardCount, b.ShardCount), cmp.Compare(a.ShardID, b.ShardID))
	})
	data, err := json.MarshalIndent(file, "", "\t")
	if err != nil {
		return fmt.Errorf("reference: session file: %w", err)
	}
	if err := writeFileAtomic(f.path, append(data, '\n')); err != nil {
		return fmt.Errorf("reference: session file: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it
// and renames it over path.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Make the rename itself durable. Not every system can sync a
	// directory, and the data is already safe, so errors are ignored.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
