package socketcluster_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/internal/fixture"
	"github.com/socketcluster-go/socketcluster/internal/sctest"
)

// BenchmarkIdleSocketHeap measures what an idle, handshaken connection
// costs the server: N clients in a child process (this test binary again,
// TestIdleClientsChild) connect over loopback, upgrade, send #handshake and
// wait; once the server has N clients and two garbage collections ran, the
// growth of the live heap, of goroutine stacks and of the process's
// resident memory is divided by N. The clients' own memory is in the other
// process, so the figures are the server's alone (net/http, crypto/tls,
// the poller, the Socket and what hangs off it, the middleware's state).
//
//	go test -run '^$' -bench IdleSocketHeap -benchtime 1x .
//
// Variants: a bare server, the same with Options.OwnDescriptors, the same
// with the interop fixture's middleware and handlers (internal/fixture),
// and the bare server over TLS 1.3, served through sc.NewTLSListener
// (event-driven reads, as plain TCP) and through crypto/tls's own
// tls.NewListener (such a socket is read by a goroutine: see
// docs/performance.md).
//
// SC_IDLE_HEAP_PROFILE=FILE writes the heap profile at the measuring point
// (with -memprofilerate 1 it is exact: what each idle socket holds).
//
// Resident memory is that of the whole test process, garbage collector's
// headroom included; it is noisier than the heap figure, which is exact.
func BenchmarkIdleSocketHeap(b *testing.B) {
	const n = 4000
	for _, v := range []struct {
		name    string
		opts    sc.Options
		fixture bool
		tls     tlsMode
	}{
		{"server=plain", sc.Options{}, false, noTLS},
		{"server=plain/owned-descriptors", sc.Options{OwnDescriptors: true}, false, noTLS},
		{"server=fixture", sc.Options{}, true, noTLS},
		{"server=plain/tls", sc.Options{}, false, tlsEvent},
		{"server=plain/tls/owned-descriptors", sc.Options{OwnDescriptors: true}, false, tlsEvent},
		{"server=plain/tls-readloop", sc.Options{}, false, tlsReadLoop},
	} {
		b.Run(fmt.Sprintf("%s/sockets=%d", v.name, n), func(b *testing.B) {
			for b.Loop() {
				idleSocketHeap(b, n, v.opts, v.fixture, v.tls)
			}
		})
	}
}

// tlsMode is how idleSocketHeap serves TLS.
type tlsMode int

const (
	noTLS       tlsMode = iota
	tlsEvent            // sc.NewTLSListener: event-driven reads
	tlsReadLoop         // tls.NewListener: a reading goroutine per socket
)

func idleSocketHeap(b *testing.B, n int, opts sc.Options, withFixture bool, mode tlsMode) {
	opts.Logger, opts.PingInterval, opts.PingTimeout = quietLogger, time.Hour, time.Hour
	srv, err := sc.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Close(context.Background()) }()
	if withFixture {
		fixture.Install(srv)
	}
	var l net.Listener
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	switch cfg := (&tls.Config{Certificates: []tls.Certificate{sctest.SelfSignedCert(b)}, MinVersion: tls.VersionTLS13}); mode {
	case tlsEvent:
		l = sc.NewTLSListener(l, cfg)
	case tlsReadLoop:
		l = tls.NewListener(l, cfg)
	}
	go func() { _ = srv.Serve(l) }()

	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0, stack0, rss0 := ms.HeapAlloc, ms.StackInuse, residentBytes()

	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientsChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SC_IDLE_CHILD="+addr+","+strconv.Itoa(n)+","+strconv.FormatBool(mode != noTLS))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = stdin.Close() // the child closes its connections and exits
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	ready := false
	for lines.Scan() {
		if lines.Text() == "IDLE-CLIENTS-READY" {
			ready = true
			break
		}
	}
	if !ready {
		b.Fatal("the child process ended before its connections were up")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	for deadline := time.Now().Add(wait); srv.ClientsCount() < n; {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d clients", srv.ClientsCount(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // flushers and idle workers gone (netpoll reaps within 200 ms)
	runtime.GC()
	runtime.GC() // sync.Pool keeps its objects for one collection
	runtime.ReadMemStats(&ms)
	rss := residentBytes()
	if p := os.Getenv("SC_IDLE_HEAP_PROFILE"); p != "" {
		writeHeapProfile(b, p)
	}
	b.ReportMetric(float64(int64(ms.HeapAlloc)-int64(heap0))/float64(n), "heap-B/socket")
	b.ReportMetric(float64(int64(ms.StackInuse)-int64(stack0))/float64(n), "stack-B/socket")
	b.ReportMetric(float64(rss-rss0)/float64(n), "rss-B/socket")
}

// TestIdleClientsChild is BenchmarkIdleSocketHeap's client process; it is
// skipped unless that benchmark started it. It opens the connections,
// handshakes each, says so on stdout and holds them until stdin closes.
func TestIdleClientsChild(t *testing.T) {
	t.Parallel()
	spec := os.Getenv("SC_IDLE_CHILD")
	if spec == "" {
		t.Skip("started by BenchmarkIdleSocketHeap only")
	}
	f := strings.Split(spec, ",")
	addr := f[0]
	n, _ := strconv.Atoi(f[1])
	withTLS := f[2] == "true"
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if withTLS {
			c = tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test's own certificate
		}
		conns = append(conns, c)
		if err := idleClientHandshake(c); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("IDLE-CLIENTS-READY")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// idleClientHandshake upgrades c and exchanges #handshake, reading the
// answer so that the server has promoted the socket.
func idleClientHandshake(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(wait))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	req := "GET /socketcluster/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	br := bufio.NewReaderSize(c, 512)
	status, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		return fmt.Errorf("upgrade refused: %q", status)
	}
	for line := ""; line != "\r\n"; {
		if line, err = br.ReadString('\n'); err != nil {
			return err
		}
	}
	payload := []byte(`{"event":"#handshake","data":{},"cid":1}`)
	frame := []byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0} // masked text frame, zero mask
	frame = append(frame, payload...)
	if _, err := c.Write(frame); err != nil {
		return err
	}
	var h [4]byte
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		return err
	}
	size := int(h[1] & 0x7f)
	if size == 126 {
		if _, err := io.ReadFull(br, h[2:4]); err != nil {
			return err
		}
		size = int(binary.BigEndian.Uint16(h[2:4]))
	}
	_, err = io.CopyN(io.Discard, br, int64(size))
	if br.Buffered() > 0 {
		return fmt.Errorf("%d unexpected bytes after the handshake answer", br.Buffered())
	}
	return err
}

// residentBytes is the process's resident memory (Linux; 0 elsewhere).
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// writeHeapProfile writes the heap profile at the measuring point (with
// -memprofilerate 1, exact: go tool pprof -sample_index=inuse_space).
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
