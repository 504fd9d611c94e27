package stream_test

import (
	"context"
	"fmt"

	"github.com/socketcluster-go/socketcluster/stream"
)

func Example() {
	d := stream.NewDemux[string]()

	// A consumer sees what is written after it was created.
	d.Write("chat", "lost: nobody listens yet")
	c := d.NewConsumer("chat", 0)
	d.Write("chat", "hello")
	d.Write("chat", "world")
	fmt.Println("backpressure:", d.Backpressure("chat"))

	// Close lets the consumer finish its backlog, then its loop ends.
	d.Close("chat")
	for msg := range c.All(context.Background()) {
		fmt.Println(msg)
	}
	fmt.Println("consumers left:", len(d.StatsAll()))
	// Output:
	// backpressure: 2
	// hello
	// world
	// consumers left: 0
}
