package redis_test

import (
	"context"
	"log"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cordkit/cordkit/impl/redis"
	"github.com/cordkit/cordkit/protocols"
)

// Every process of the bot builds its rate limiter from the same Redis and
// namespace, so their requests share Discord's limits. The example needs a
// Redis at localhost:6379, so it is compiled but not run.
func ExampleOptions_NewRateLimiter() {
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer client.Close()
	opts := redis.Options{Client: client, Namespace: "123456789012345678"} // the application id

	// In a TypeSheet: sheet.NewRateLimiter = opts.NewRateLimiter
	l, err := opts.NewRateLimiter(protocols.RateLimiterParams{})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	r, _ := protocols.NewRoute("POST", "/channels/{channel_id}/messages", "42")
	p, err := l.Acquire(context.Background(), r)
	if err != nil {
		log.Fatal(err)
	}
	// ... send the request, then report what Discord answered:
	p.Complete(protocols.RateLimitInfo{Status: 200, Bucket: "abc", HasLimit: true, Limit: 5, Remaining: 4})

	if st := l.(*redis.RateLimiter).Status(); !st.Shared {
		log.Printf("rate limits are local since %v: %v", st.Since, st.Err)
	}
}
