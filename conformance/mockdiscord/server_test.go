package mockdiscord_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordkit/cordkit/conformance/mockdiscord"
)

func TestControlAPI(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		ctl := func(method, path string, body any) reply {
			return e.do(method, e.s.URL()+"/_mock/"+path, body, noAuth, header("User-Agent", "curl"))
		}
		var world struct {
			Bot    map[string]any `json:"bot"`
			Guilds []struct {
				ID       string `json:"id"`
				Channels []struct {
					ID string `json:"id"`
				} `json:"channels"`
			} `json:"guilds"`
			Webhooks []map[string]any `json:"webhooks"`
		}
		ctl("GET", "world", nil).decode(t, &world)
		wantEqual(t, "guilds", len(world.Guilds), 3)
		wantEqual(t, "first channel", world.Guilds[0].Channels[0].ID, e.s.Channels()[0])
		wantEqual(t, "webhooks", len(world.Webhooks), 6)
		wantEqual(t, "bot id", world.Bot["id"], any(e.s.UserID()))

		var events []mockdiscord.Event
		var mu sync.Mutex
		cancel := e.s.Subscribe(func(ev mockdiscord.Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
		})
		ch := e.s.Channels()[2]
		r := ctl("POST", "messages", `{"channel_id":"`+ch+`","content":"hello bot","author":"alice"}`)
		wantStatus(t, r, 200)
		m := r.obj(t)
		wantEqual(t, "author", m["author"].(map[string]any)["username"], any("alice"))
		id := e.post(ch, "hello alice")
		wantStatus(t, e.do("DELETE", "/channels/"+ch+"/messages/"+id, nil), 204)
		cancel()
		cancel()
		e.post(ch, "unseen")
		mu.Lock()
		var types []string
		for _, ev := range events {
			types = append(types, ev.Type+" "+ev.Message.Content)
		}
		mu.Unlock()
		wantEqual(t, "events", types, []string{"MESSAGE_CREATE hello bot", "MESSAGE_CREATE hello alice", "MESSAGE_DELETE hello alice"})

		var msgs []map[string]any
		ctl("GET", "messages?channel_id="+ch, nil).decode(t, &msgs)
		wantEqual(t, "messages oldest first", []any{msgs[0]["content"], msgs[1]["content"]}, []any{"hello bot", "unseen"})
		wantStatus(t, ctl("GET", "messages?channel_id=1", nil), 404)
		wantStatus(t, ctl("POST", "messages", `{"channel_id":"1","content":"x"}`), 400)

		var obs []mockdiscord.Observation
		ctl("GET", "observations", nil).decode(t, &obs)
		wantEqual(t, "observations", len(obs), 3)
		wantEqual(t, "observation endpoint", obs[0].Endpoint, "POST /channels/{channel_id}/messages")
		wantEqual(t, "observation user agent", obs[0].UserAgent, userAgent)
		wantEqual(t, "observation authorized", obs[0].Authorized, true)

		e.do("POST", "/interactions/9/tok/callback", `{"type":5}`)
		var irs []map[string]any
		ctl("GET", "interactions", nil).decode(t, &irs)
		wantEqual(t, "interactions", len(irs), 1)

		wantStatus(t, ctl("POST", "reset", nil), 204)
		ctl("GET", "observations", nil).decode(t, &obs)
		wantEqual(t, "observations after reset", len(obs), 0)
		wantEqual(t, "messages after reset", len(e.s.Messages(ch)), 0)
		wantStatus(t, ctl("GET", "reset", nil), 405)
		wantStatus(t, ctl("GET", "nothing", nil), 404)
	})
}

func TestClientReachesAnyHost(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		r := e.do("GET", "https://discord.com/api/v10/gateway", nil)
		wantStatus(t, r, 200)
		wantEqual(t, "url", r.obj(t)["url"], any("ws://discord.com/gateway"))
	})
}

func TestClientCancelWhileWaitingForLatency(t *testing.T) {
	bubble(t, &mockdiscord.Options{Latency: time.Hour}, func(t *testing.T, e *env) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := e.send("GET", "/users/@me", nil, withContext(ctx))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want DeadlineExceeded", err)
		}
		synctest.Wait()
		wantEqual(t, "status", e.last().Status, mockdiscord.StatusClientGone)
	})
}

func TestCloseWakesWaitingRequests(t *testing.T) {
	bubble(t, &mockdiscord.Options{Latency: time.Hour}, func(t *testing.T, e *env) {
		errc := make(chan error, 1)
		go func() {
			r, err := e.send("GET", "/users/@me", nil)
			if err == nil && r.status != http.StatusServiceUnavailable {
				err = fmt.Errorf("got status %d, want 503 or an error", r.status)
			} else if err == nil {
				err = errors.New("503")
			}
			errc <- err
		}()
		synctest.Wait() // the request is waiting on Latency
		if err := e.s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err == nil || strings.HasPrefix(err.Error(), "got status") {
			t.Errorf("request during Close: %v", err)
		}
		_, err := e.send("GET", "/users/@me", nil)
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("request after Close: got %v, want net.ErrClosed", err)
		}
		if err := e.s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestUnreadResponseBodyDoesNotBlockClose(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		req, _ := http.NewRequest("GET", e.base+"/channels/"+e.s.Channels()[0]+"/messages", nil)
		req.Header.Set("Authorization", "Bot "+e.s.Token())
		req.Header.Set("User-Agent", userAgent)
		res, err := e.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		// Close before reading the body.
		if err := e.s.Close(); err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(res.Body)
		_ = res.Body.Close()
	})
}

func TestLargeRequestBody(t *testing.T) {
	bubble(t, &mockdiscord.Options{MaxFileSize: 64}, func(t *testing.T, e *env) {
		// Bigger than the mock reads: it answers 413 before reading it all.
		body := `{"content":"` + strings.Repeat("x", 20<<20) + `"}`
		r := e.do("POST", "/channels/"+e.s.Channels()[0]+"/messages", body)
		wantStatus(t, r, 413)
		wantEqual(t, "code", r.code(t), 40005)
	})
}

func TestStartLifecycle(t *testing.T) {
	s := mockdiscord.New(nil)
	wantEqual(t, "URL before Start", s.URL(), "http://mockdiscord.test")
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); !errors.Is(err, mockdiscord.ErrAlreadyStarted) {
		t.Errorf("second Start: got %v, want ErrAlreadyStarted", err)
	}
	wantEqual(t, "APIBase", s.APIBase(), s.URL()+"/api/v10")
	// Keep a connection open and idle: Close must still end it.
	c := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", s.APIBase()+"/gateway", nil)
	req.Header.Set("User-Agent", userAgent)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Start("127.0.0.1:0"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Start after Close: got %v, want net.ErrClosed", err)
	}
	c.CloseIdleConnections()
}

func TestHandlerOnOwnServer(t *testing.T) {
	s := mockdiscord.New(nil)
	defer s.Close()
	srv := &http.Server{Handler: s.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	defer func() {
		_ = srv.Close()
		<-done
	}()
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/api/v10/users/@me", nil)
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Authorization", "Bot "+s.Token())
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	wantEqual(t, "status", res.StatusCode, 200)
}

func TestOptionsValidate(t *testing.T) {
	var nilOpts *mockdiscord.Options
	if err := nilOpts.Validate(); err != nil {
		t.Errorf("nil Options: %v", err)
	}
	if err := (&mockdiscord.Options{Buckets: mockdiscord.DefaultBuckets()}).Validate(); err != nil {
		t.Errorf("DefaultBuckets: %v", err)
	}
	bad := &mockdiscord.Options{
		Token:    "has space",
		BanStyle: "html",
		Buckets: []mockdiscord.BucketSpec{
			{Endpoint: "GET /nope", Limit: 1, Window: time.Second},
			{Endpoint: "GET /users/@me", Limit: 0, Window: 0},
			{Endpoint: "get /users/@me", Limit: 1, Window: time.Second},
		},
	}
	err := bad.Validate()
	if !errors.Is(err, mockdiscord.ErrInvalidOptions) {
		t.Fatalf("got %v, want ErrInvalidOptions", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 6 {
		t.Errorf("got %d problems, want 6:\n%v", n, err)
	}
	// New fixes what Validate reports: Limit 0 acts as 1, Window 0 as 1s.
	bubble(t, &mockdiscord.Options{Buckets: bad.Buckets[:2]}, func(t *testing.T, e *env) {
		wantStatus(t, e.do("GET", "/users/@me", nil), 200)
		r := e.do("GET", "/users/@me", nil)
		wantStatus(t, r, 429)
		wantHeader(t, r, "X-RateLimit-Reset-After", "1.000")
	})
}

func TestEndpointsMatchDefaultBuckets(t *testing.T) {
	known := map[string]bool{}
	for _, ep := range mockdiscord.Endpoints() {
		known[ep] = true
	}
	for _, b := range mockdiscord.DefaultBuckets() {
		if !known[b.Endpoint] {
			t.Errorf("DefaultBuckets endpoint %q is not in Endpoints()", b.Endpoint)
		}
	}
	if len(mockdiscord.Endpoints()) != 18 {
		t.Errorf("Endpoints: got %d, want 18", len(mockdiscord.Endpoints()))
	}
}

func TestSnowflakes(t *testing.T) {
	bubble(t, nil, func(t *testing.T, e *env) {
		ch := e.s.Channels()[0]
		time.Sleep(90 * time.Second)
		a := e.post(ch, "a")
		b := e.post(ch, "b")
		na, _ := strconv.ParseUint(a, 10, 64)
		nb, _ := strconv.ParseUint(b, 10, 64)
		if na == 0 || nb <= na {
			t.Errorf("IDs not increasing: %s, %s", a, b)
		}
		want := time.Date(2024, 1, 1, 0, 1, 30, 0, time.UTC)
		wantEqual(t, "snowflake time", mockdiscord.SnowflakeTime(a), want)
		wantEqual(t, "timestamp", e.s.Messages(ch)[0].Timestamp.UTC(), time.Date(2000, 1, 1, 0, 1, 30, 0, time.UTC))
		wantEqual(t, "not a snowflake", mockdiscord.SnowflakeTime("x"), time.Time{})
	})
}

func TestCustomToken(t *testing.T) {
	// base64("222222222222222222") = "MjIyMjIyMjIyMjIyMjIyMjIy"
	bubble(t, &mockdiscord.Options{Token: "MjIyMjIyMjIyMjIyMjIyMjIy.x.y"}, func(t *testing.T, e *env) {
		wantEqual(t, "user id", e.s.UserID(), "222222222222222222")
		wantStatus(t, e.do("GET", "/users/@me", nil), 200)
		wantStatus(t, e.do("GET", "/users/@me", nil, header("Authorization", "Bot "+mockdiscord.DefaultToken)), 401)
	})
}

func ExampleServer() {
	srv := mockdiscord.New(nil)
	defer srv.Close()
	channel := srv.Channels()[0]

	req, _ := http.NewRequest("POST", srv.APIBase()+"/channels/"+channel+"/messages", strings.NewReader(`{"content":"hello"}`))
	req.Header.Set("Authorization", "Bot "+srv.Token())
	req.Header.Set("User-Agent", "DiscordBot (https://github.com/cordkit/cordkit, 0.1.0)")
	req.Header.Set("Content-Type", "application/json")
	res, err := srv.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = res.Body.Close()

	fmt.Println(res.StatusCode, res.Header.Get("X-RateLimit-Limit"), res.Header.Get("X-RateLimit-Remaining"))
	fmt.Println(srv.Messages(channel)[0].Content)
	fmt.Println(srv.Observations()[0].Endpoint)
	fmt.Println(len(srv.WindowViolations()))
	// Output:
	// 200 5 4
	// hello
	// POST /channels/{channel_id}/messages
	// 0
}
