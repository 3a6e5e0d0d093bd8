package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/disgoorg/disgo/gateway"

	"github.com/cordkit/cordkit"
	"github.com/cordkit/cordkit/conformance/mockdiscord"
	"github.com/cordkit/cordkit/impl/fast"
	"github.com/cordkit/cordkit/protocols"
)

// Gateway clients of the gateway and idle scenarios: each library
// connects shards to the mock and hands every dispatch to a sink.

// gwIntents: every event of the mix (GUILD_CREATE: GUILDS; PRESENCE_UPDATE:
// GUILD_PRESENCES; GUILD_MEMBER_UPDATE: GUILD_MEMBERS; MESSAGE_CREATE:
// GUILD_MESSAGES, with MESSAGE_CONTENT; TYPING_START: GUILD_MESSAGE_TYPING).
const gwIntents = protocols.IntentGuilds | protocols.IntentGuildMembers | protocols.IntentGuildPresences |
	protocols.IntentGuildMessages | protocols.IntentGuildMessageTyping | protocols.IntentMessageContent

// Compression modes a library's rows run, uncompressed first, then the
// best the library supports: for cordkit zlib-stream, and zstd-stream
// with fast.TypeSheet (whose inflater adds it; the reference one refuses
// it). A mode is one element here: the gateway scenario, its frames-only
// floor and the idle scenario's baselines follow. discordgo v0.29.0 and
// disgo v0.18.15 support only per-payload zlib (IDENTIFY compress: true).
var (
	cordkitRefModes  = []protocols.Compression{protocols.CompressNone, protocols.CompressZlibStream}
	cordkitFastModes = []protocols.Compression{protocols.CompressNone, protocols.CompressZlibStream, protocols.CompressZstdStream}
	peerModes        = []protocols.Compression{protocols.CompressNone, protocols.CompressZlibPayload}
)

// transport is the mock-side transport of a mode: payload compression
// is negotiated in IDENTIFY on an uncompressed transport.
func transport(mode protocols.Compression) protocols.Compression {
	if mode == protocols.CompressZlibPayload {
		return protocols.CompressNone
	}
	return mode
}

// allModes lists the modes of libs, in first-seen order.
func allModes(libs []gwLib) []protocols.Compression {
	var out []protocols.Compression
	for _, l := range libs {
		for _, m := range l.modes {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// gwSink counts the dispatches of the mix a handler saw: first the
// untimed warm-up ones, then the timed ones.
type gwSink struct {
	warm, want   int64 // warm-up events, and all events
	got          atomic.Int64
	warmed, done chan struct{}
	errs         atomic.Int64
	firstErr     atomic.Pointer[error]
}

func newSink(warm, timed int) *gwSink {
	return &gwSink{warm: int64(warm), want: int64(warm + timed), warmed: make(chan struct{}), done: make(chan struct{})}
}

// saw counts a dispatch named name if it is one of the mix.
func (s *gwSink) saw(name string) {
	switch name {
	case evMessageCreate, evGuildCreate, evPresenceUpdate, evTypingStart, evGuildMemberUpdate:
		s.count()
	}
}

func (s *gwSink) count() {
	n := s.got.Add(1)
	if n == s.warm {
		close(s.warmed)
	}
	if n == s.want {
		close(s.done)
	}
}

func (s *gwSink) fail(err error) {
	if s.errs.Add(1) == 1 {
		s.firstErr.Store(&err)
	}
}

func (s *gwSink) err() error {
	if p := s.firstErr.Load(); p != nil {
		return fmt.Errorf("%d handler errors, first: %w", s.errs.Load(), *p)
	}
	return nil
}

// gwLib is a library as the gateway scenarios drive it.
type gwLib struct {
	name  string
	modes []protocols.Compression
	// connect starts shards ids of count on srv in mode, returns once
	// all are READY, and hands every dispatch to sink (nil: drop them).
	// stop closes them.
	connect func(ctx context.Context, srv *mockdiscord.Server, mode protocols.Compression, ids []int, count int, sink *gwSink) (stop func(), err error)
}

// ---- cordkit ----

// cordkitGateway: one State with the shards, the handler on
// Events(AnyEvent); raw hands d on as bytes, typed decodes it with the
// TypeSheet's codec into the bench's structs.
func cordkitGateway(sheet func() cordkit.TypeSheet, typed bool) func(context.Context, *mockdiscord.Server, protocols.Compression, []int, int, *gwSink) (func(), error) {
	return func(ctx context.Context, srv *mockdiscord.Server, mode protocols.Compression, ids []int, count int, sink *gwSink) (func(), error) {
		cfg := cordkit.Config{
			Token: cordkit.BotToken(srv.Token()), APIBase: srv.APIBase(), GatewayURL: srv.GatewayURL(),
			ShardCount: count, ShardIDs: ids, MaxConcurrency: count, Intents: gwIntents, Compression: mode,
			LargeThreshold: 250, GlobalLimit: -1,
		}
		st, err := cordkit.New(cfg, sheet())
		if err != nil {
			return nil, err
		}
		if sink != nil {
			codec := st.Codec()
			if typed {
				st.Events().Listen(protocols.AnyEvent, func(ev protocols.Event) {
					if err := decodeTyped(codec, ev.Name, ev.Data); err != nil {
						sink.fail(fmt.Errorf("%s: %w", ev.Name, err))
					}
					sink.saw(ev.Name)
				})
			} else {
				st.Events().Listen(protocols.AnyEvent, func(ev protocols.Event) {
					if len(ev.Data) == 0 {
						sink.fail(fmt.Errorf("%s: empty d", ev.Name))
					}
					sink.saw(ev.Name)
				})
			}
		}
		if err := st.Gateway().Connect(ctx); err != nil {
			_ = st.Close()
			return nil, err
		}
		return func() { _ = st.Close() }, nil
	}
}

func decodeTyped(codec protocols.Codec, name string, d []byte) error {
	var v any
	switch name {
	case evMessageCreate:
		v = new(bMessage)
	case evGuildCreate:
		v = new(bGuild)
	case evPresenceUpdate:
		v = new(bPresenceUpdate)
	case evTypingStart:
		v = new(bTypingStart)
	case evGuildMemberUpdate:
		v = new(bMember)
	default:
		return nil
	}
	err := codec.Unmarshal(d, v)
	runtime.KeepAlive(v)
	return err
}

func cordkitRef() cordkit.TypeSheet  { return cordkit.TypeSheet{} }
func cordkitFast() cordkit.TypeSheet { return fast.TypeSheet() }

// ---- discordgo ----

// dgErrors counts discordgo's decode errors: it logs them and goes on
// with a partly filled struct, so the bench reads its log.
var dgErrors struct {
	mu    sync.Mutex
	n     int
	first string
}

func init() {
	discordgo.Logger = func(_ int, _ int, format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		if strings.Contains(msg, "unmarshal") || strings.Contains(msg, "decoding") || strings.Contains(msg, "uncompressing") {
			dgErrors.mu.Lock()
			if dgErrors.n == 0 {
				dgErrors.first = msg
			}
			dgErrors.n++
			dgErrors.mu.Unlock()
		}
	}
}

func dgErrorCount() (int, string) {
	dgErrors.mu.Lock()
	defer dgErrors.mu.Unlock()
	return dgErrors.n, dgErrors.first
}

// discordgoGateway: one Session per shard (discordgo has no shard
// manager), state cache off, handlers run in order on the read goroutine
// (SyncEvents). Open asks GET /gateway through Session.Client, whose
// transport sends discord.com to the mock, and returns after READY.
// discordgo decodes every dispatch into its struct before any handler.
func discordgoGateway(ctx context.Context, srv *mockdiscord.Server, mode protocols.Compression, ids []int, count int, sink *gwSink) (func(), error) {
	u, err := url.Parse(srv.URL())
	if err != nil {
		return nil, err
	}
	tr := newTransport()
	hc := &http.Client{Transport: &hostRewriter{host: u.Host, base: tr}, Timeout: time.Minute}
	sessions := make([]*discordgo.Session, len(ids))
	stop := func() {
		var wg sync.WaitGroup
		for _, s := range sessions {
			if s != nil {
				wg.Go(func() { _ = s.Close() })
			}
		}
		wg.Wait()
		tr.CloseIdleConnections()
	}
	err = parallel(ctx, len(ids), func(i int) error {
		s, err := discordgo.New("Bot " + srv.Token())
		if err != nil {
			return err
		}
		s.Client = hc
		s.StateEnabled = false
		s.SyncEvents = true
		s.Compress = mode == protocols.CompressZlibPayload
		s.Identify.Compress = s.Compress
		s.Identify.Intents = discordgo.Intent(gwIntents)
		s.Identify.LargeThreshold = 250
		s.ShardID, s.ShardCount = ids[i], count
		s.LogLevel = discordgo.LogError
		if sink != nil {
			s.AddHandler(func(_ *discordgo.Session, e *discordgo.Event) {
				if e.Struct == nil {
					sink.fail(fmt.Errorf("%s: no struct", e.Type))
				}
				sink.saw(e.Type)
			})
		}
		sessions[i] = s
		// Open takes no context: bound it (on a timeout the stuck Open
		// ends when the mock closes its connections).
		opened := make(chan error, 1)
		go func() { opened <- s.Open() }()
		select {
		case err := <-opened:
			return err
		case <-ctx.Done():
			sessions[i] = nil
			return fmt.Errorf("discordgo Open: %w", ctx.Err())
		}
	})
	tr.CloseIdleConnections() // GET /gateway's connections are not the shards'
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// ---- disgo ----

// errorCounter is a slog.Handler that counts error records (disgo logs
// a payload it cannot parse and drops it).
type errorCounter struct {
	n     atomic.Int64
	first atomic.Pointer[string]
}

func (h *errorCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *errorCounter) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	if h.n.Add(1) == 1 {
		h.first.Store(&msg)
	}
	return nil
}
func (h *errorCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorCounter) WithGroup(string) slog.Handler      { return h }

// disgoGateway: one gateway.Gateway per shard (what disgo's
// ShardManager holds, without its identify limiter, which the mock's
// settings make moot). disgo decodes every dispatch into its event struct
// before calling the handler. Open returns after the dial; READY is
// awaited through the handler.
func disgoGateway(ctx context.Context, srv *mockdiscord.Server, mode protocols.Compression, ids []int, count int, sink *gwSink) (func(), error) {
	logs := &errorCounter{}
	logger := slog.New(logs)
	var readies atomic.Int64
	allReady := make(chan struct{})
	handler := func(et gateway.EventType, _ int, _ int, _ gateway.EventData) {
		if et == gateway.EventTypeReady {
			if readies.Add(1) == int64(len(ids)) {
				close(allReady)
			}
			return
		}
		if sink != nil {
			sink.saw(string(et))
		}
	}
	gws := make([]gateway.Gateway, len(ids))
	stop := func() {
		var wg sync.WaitGroup
		for _, g := range gws {
			if g != nil {
				wg.Go(func() {
					cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					g.Close(cctx)
				})
			}
		}
		wg.Wait()
		if sink != nil && logs.n.Load() > 0 {
			sink.fail(fmt.Errorf("disgo logged %d errors, first: %s", logs.n.Load(), *logs.first.Load()))
		}
	}
	err := parallel(ctx, len(ids), func(i int) error {
		g := gateway.New(srv.Token(), handler, nil,
			gateway.WithURL(srv.GatewayURL()),
			gateway.WithCompress(mode == protocols.CompressZlibPayload),
			gateway.WithIntents(gateway.Intents(gwIntents)),
			gateway.WithLargeThreshold(250),
			gateway.WithShardID(ids[i]), gateway.WithShardCount(count),
			gateway.WithLogger(logger),
		)
		gws[i] = g
		return g.Open(ctx)
	})
	if err == nil {
		select {
		case <-allReady:
		case <-ctx.Done():
			err = fmt.Errorf("%d of %d shards READY: %w", readies.Load(), len(ids), ctx.Err())
		}
	}
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// ---- the floor: a bare websocket reader ----

// rawGateway connects bare gobwas/ws clients (wsraw.go). With a sink,
// only one shard: a goroutine reads frames and counts each as a
// dispatch, decoding nothing.
func rawGateway(ctx context.Context, srv *mockdiscord.Server, mode protocols.Compression, ids []int, count int, sink *gwSink) (func(), error) {
	conns := make([]*rawConn, len(ids))
	stop := func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	}
	err := parallel(ctx, len(ids), func(i int) error {
		c, err := dialRaw(ctx, srv, mode, ids[i], count, gwIntents)
		conns[i] = c
		return err
	})
	if err != nil {
		stop()
		return nil, err
	}
	if sink != nil {
		if len(conns) != 1 {
			stop()
			return nil, errors.New("raw reader: one shard only")
		}
		go func() {
			if err := conns[0].readFrames(int(sink.want), func(int) { sink.count() }); err != nil && sink.got.Load() < sink.want {
				sink.fail(err)
			}
		}()
	}
	return stop, nil
}

// parallel runs f(0..n-1) on up to 32 goroutines and returns the first
// error; it stops starting new calls after an error or when ctx ends.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range min(n, 32) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				mu.Lock()
				failed := first != nil
				mu.Unlock()
				if failed {
					return
				}
				err := f(i)
				if err == nil {
					err = ctx.Err()
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("shard %d: %w", i, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}
