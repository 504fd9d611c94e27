package stream

import (
	"context"
	"strconv"
	"testing"
)

// reset empties c's queue in place, keeping its buffer.
func reset[T any](c *Consumer[T]) {
	c.mu.Lock()
	clear(c.buf)
	c.buf, c.head = c.buf[:0], 0
	c.mu.Unlock()
}

func BenchmarkWrite(b *testing.B) {
	for _, n := range []int{0, 1, 100} {
		b.Run(strconv.Itoa(n)+"consumers", func(b *testing.B) {
			d := NewDemux[int]()
			cs := make([]*Consumer[int], n)
			for i := range cs {
				cs[i] = d.NewConsumer("s", 0)
			}
			// Keep queues short, as with readers that keep up: empty them
			// every idleCap writes (a cheap reset, amortised to well under
			// 1ns per write), so the numbers show the steady state without
			// buffer growth.
			const batch = idleCap
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				d.Write("s", i)
				if n > 0 && i%batch == batch-1 {
					for _, c := range cs {
						reset(c)
					}
				}
			}
			b.StopTimer()
			for _, c := range cs {
				c.Stop()
			}
		})
	}
}

func BenchmarkWriteNext(b *testing.B) {
	d := NewDemux[int]()
	c := d.NewConsumer("s", 0)
	defer c.Stop()
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Write("s", i)
		if _, err := c.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteNextConcurrent has a writer and a blocking reader in
// separate goroutines.
func BenchmarkWriteNextConcurrent(b *testing.B) {
	d := NewDemux[int]()
	c := d.NewConsumer("s", 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range b.N {
			if _, err := c.Next(ctx); err != nil {
				return
			}
		}
	}()
	for i := range b.N {
		d.Write("s", i)
	}
	<-done
	b.StopTimer()
	c.Stop()
}
