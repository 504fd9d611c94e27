// Package redislib compares the publish cost of two Redis client libraries,
// go-redis and rueidis, the measurement behind broker/redisbroker's choice
// of rueidis (see that package's doc). It is a module of its own so that
// go-redis is not a dependency of the socketcluster module:
//
//	cd bench/redislib && go test -run '^$' -bench Lib -benchmem
//
// REDIS_URL selects the server (default redis://127.0.0.1:6379); without a
// reachable Redis the benchmarks skip.
package redislib

import (
	"context"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

var libPayload = make([]byte, 128)

func redisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379"
}

func benchPar(b *testing.B, publish func(ctx context.Context) error) {
	b.SetParallelism(16) // 16 × GOMAXPROCS concurrent publishers, as many client goroutines would be
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := publish(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchSerial(b *testing.B, publish func(ctx context.Context) error) {
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		if err := publish(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func goRedis(b *testing.B) *goredis.Client {
	opt, err := goredis.ParseURL(redisURL())
	if err != nil {
		b.Fatal(err)
	}
	c := goredis.NewClient(opt)
	b.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		b.Skip(err)
	}
	return c
}

func ruei(b *testing.B) rueidis.Client {
	opt, err := rueidis.ParseURL(redisURL())
	if err != nil {
		b.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(c.Close)
	return c
}

func BenchmarkLibGoRedisSerial(b *testing.B) {
	c := goRedis(b)
	benchSerial(b, func(ctx context.Context) error { return c.Publish(ctx, "libbench", libPayload).Err() })
}

func BenchmarkLibGoRedisParallel(b *testing.B) {
	c := goRedis(b)
	benchPar(b, func(ctx context.Context) error { return c.Publish(ctx, "libbench", libPayload).Err() })
}

func BenchmarkLibRueidisSerial(b *testing.B) {
	c := ruei(b)
	benchSerial(b, func(ctx context.Context) error {
		return c.Do(ctx, c.B().Publish().Channel("libbench").Message(rueidis.BinaryString(libPayload)).Build()).Error()
	})
}

func BenchmarkLibRueidisParallel(b *testing.B) {
	c := ruei(b)
	benchPar(b, func(ctx context.Context) error {
		return c.Do(ctx, c.B().Publish().Channel("libbench").Message(rueidis.BinaryString(libPayload)).Build()).Error()
	})
}
