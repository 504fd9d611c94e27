//go:build !linux

// Command scbench is a load generator for SocketCluster servers. It reads
// its connections with epoll and the server's figures from /proc, so it
// runs on Linux only; on other systems it says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "scbench runs on Linux only (it reads its connections with epoll and the server's CPU and memory from /proc)")
	os.Exit(2)
}
