//go:build libchoice

// Library comparison kept for reproducibility:
//
//	go test -tags libchoice -run '^$' -bench 'Lib' -benchmem ./broker/redisbroker/
package redisbroker_test

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

var libPayload = make([]byte, 128)

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
