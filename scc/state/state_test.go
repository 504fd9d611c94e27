package state

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 30 * time.Second

func start(t *testing.T, o Options) (*Server, string) {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.HTTPServer()
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(l) }()
	t.Cleanup(func() {
		_ = s.Close(context.Background())
		_ = hs.Close()
		<-done
	})
	return s, l.Addr().String()
}

func fast() Options {
	o := DefaultOptions()
	o.StartupDelay, o.ScaleOutDelay, o.ScaleBackDelay, o.RetryDelay = 0, 50*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond
	return o
}

// component connects as an SCC component; procedures lists the
// procedure streams to open before connecting.
func component(t *testing.T, addr string, q map[string]string, procedures ...string) (*client.Client, map[string]*client.Consumer[*client.Request], error) {
	t.Helper()
	vals := url.Values{}
	for k, v := range q {
		vals.Set(k, v)
	}
	c, err := client.New("ws://"+addr+"/socketcluster/", &client.Options{Query: vals})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(1000, "") })
	cons := map[string]*client.Consumer[*client.Request]{}
	for _, p := range procedures {
		cons[p] = c.Procedure(p).Consumer()
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return c, cons, c.Connect(ctx)
}

func worker(port string) map[string]string {
	return map[string]string{"instanceType": TypeWorker, "instancePort": port, "version": "9.2.0"}
}

func brokerQ(port, version string) map[string]string {
	return map[string]string{"instanceType": TypeBroker, "instancePort": port, "version": version}
}

func invoke(t *testing.T, c *client.Client, name string, data any) (sc.Data, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return c.Invoke(ctx, name, data)
}

type update struct {
	Brokers []string `json:"sccBrokerURIs"`
	Workers []string `json:"sccWorkerURIs"`
	Time    int64    `json:"time"`
	Source  string   `json:"sccSourceWorkerURI"`
}

func nextUpdate(t *testing.T, c *client.Consumer[*client.Request]) update {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var u update
	if err := req.Data.Decode(&u); err != nil {
		t.Fatal(err)
	}
	_ = req.End(sc.Undefined)
	return u
}

func TestHealthCheckAndNotFound(t *testing.T) {
	_, addr := start(t, fast())
	for path, want := range map[string]int{"/health-check": 200, "/": 404, "/other": 404} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && string(body) != "OK") || (want == 404 && string(body) != "Not found") {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
}

func TestAuthKeyAndVersions(t *testing.T) {
	o := fast()
	o.AuthKey = "k"
	s, addr := start(t, o)
	if _, _, err := component(t, addr, worker("1")); err == nil {
		t.Fatal("no authKey accepted")
	}
	q := worker("1")
	q["authKey"] = "bad"
	if _, _, err := component(t, addr, q); err == nil {
		t.Fatal("a wrong authKey accepted")
	}
	if s.Stats().AuthRejected != 2 {
		t.Fatalf("auth rejections %+v", s.Stats())
	}
	for version, ok := range map[string]bool{"9.2.0": true, "10.0.1": true, "9.3.0": true, "8.1.0": false, "11.0.0": false, "": false, "v9.2.0": false, "9": false} {
		q := brokerQ("8888", version)
		q["authKey"] = "k"
		_, _, err := component(t, addr, q)
		if ok != (err == nil) {
			t.Errorf("version %q: %v", version, err)
		}
		if !ok && err != nil {
			if e, isSC := err.(*sc.Error); !isSC || e.Name != "CompatibilityError" {
				t.Errorf("version %q: %v", version, err)
			}
		}
	}
	q = map[string]string{"version": "9.2.0", "authKey": "k"} // no instanceType: obsolete
	if _, _, err := component(t, addr, q); err != nil {
		t.Log("no instanceType, accepted as in scc-state:", err)
	}
	if s.Stats().VersionRejected != 5 {
		t.Fatalf("version rejections %+v", s.Stats())
	}
	q = map[string]string{"instanceType": "scc-gizmo", "instancePort": "1", "version": "9.2.0", "authKey": "k"}
	if _, _, err := component(t, addr, q); err == nil || !strings.Contains(err.Error(), "Unknown instanceType") {
		t.Fatalf("unknown instance type: %v", err)
	}
	if s.Stats().TypeRejected != 1 {
		t.Fatalf("type rejections %+v", s.Stats())
	}
}

func TestStartupDelayRefusesWorkers(t *testing.T) {
	o := fast()
	o.StartupDelay = time.Hour
	s, addr := start(t, o)
	w, _, err := component(t, addr, worker("8000"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = invoke(t, w, "sccWorkerJoinCluster", map[string]any{"instanceId": "w1"})
	if err == nil || !strings.Contains(err.Error(), "waiting for initial broker connections") {
		t.Fatalf("join during the start-up delay: %v", err)
	}
	if s.Stats().EarlyWorkerJoins != 1 || s.Stats().Workers != 0 {
		t.Fatalf("%+v", s.Stats())
	}
	// Brokers may join meanwhile.
	b, _, err := component(t, addr, brokerQ("8888", "10.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := invoke(t, b, "sccBrokerJoinCluster", map[string]any{"instanceId": "b1"}); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Brokers != 1 {
		t.Fatalf("%+v", s.Stats())
	}
}

// The cluster's life as workers see it: the join answer, debounced
// broker joins, a broker leaving by disconnection, another worker's join,
// URIs as the Node server writes them, increasing snapshot times and
// retried updates.
func TestClusterUpdates(t *testing.T) {
	s, addr := start(t, fast())
	procs := []string{"sccBrokerJoinCluster", "sccBrokerLeaveCluster", "sccWorkerJoinCluster", "sccWorkerLeaveCluster"}
	w1, w1p, err := component(t, addr, worker("8000"), procs...)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := invoke(t, w1, "sccWorkerJoinCluster", map[string]any{"instanceId": "w1", "instanceIp": "10.0.0.1", "instanceIpFamily": "IPv4"})
	if err != nil {
		t.Fatal(err)
	}
	var joined update
	if err := ans.Decode(&joined); err != nil {
		t.Fatal(err)
	}
	if len(joined.Brokers) != 0 || len(joined.Workers) != 1 || joined.Workers[0] != "ws://10.0.0.1:8000" || joined.Source != "ws://10.0.0.1:8000" || joined.Time == 0 {
		t.Fatalf("join answer %+v", joined)
	}

	// Two brokers join within the scale-out delay: one update with both.
	b1, _, err := component(t, addr, brokerQ("8888", "10.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	b2, _, err := component(t, addr, brokerQ("9999", "9.3.0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := invoke(t, b1, "sccBrokerJoinCluster", map[string]any{"instanceId": "b1", "instanceIp": nil, "instanceIpFamily": "IPv4", "instanceSecure": false}); err != nil {
		t.Fatal(err)
	}
	if _, err := invoke(t, b2, "sccBrokerJoinCluster", map[string]any{"instanceId": "b2", "instanceIp": "fd00::2", "instanceIpFamily": "IPv6", "instanceSecure": true}); err != nil {
		t.Fatal(err)
	}
	u := nextUpdate(t, w1p["sccBrokerJoinCluster"])
	want := []string{"ws://[::ffff:127.0.0.1]:8888", "wss://[fd00::2]:9999"}
	if strings.Join(u.Brokers, " ") != strings.Join(want, " ") || u.Time <= joined.Time || u.Source != "ws://10.0.0.1:8000" {
		t.Fatalf("broker update %+v, want %v", u, want)
	}

	// A broker that disconnects leaves.
	_ = b1.Close(1000, "")
	u2 := nextUpdate(t, w1p["sccBrokerLeaveCluster"])
	if len(u2.Brokers) != 1 || u2.Brokers[0] != want[1] || u2.Time <= u.Time {
		t.Fatalf("leave update %+v", u2)
	}

	// Another worker joins: the first hears of it, the joiner does not.
	w2, w2p, err := component(t, addr, worker("8001"), procs...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := invoke(t, w2, "sccWorkerJoinCluster", map[string]any{"instanceId": "w2"}); err != nil {
		t.Fatal(err)
	}
	wu := nextUpdate(t, w1p["sccWorkerJoinCluster"])
	if len(wu.Workers) != 2 || wu.Workers[1] != "ws://[::ffff:127.0.0.1]:8001" {
		t.Fatalf("worker update %+v", wu)
	}
	if w2p["sccWorkerJoinCluster"].Backpressure() != 0 {
		t.Fatal("the joiner was told of its own join")
	}

	// An update a worker refuses is retried.
	b3, _, err := component(t, addr, brokerQ("7000", "10.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := b3.Invoke(ctx, "sccBrokerJoinCluster", map[string]any{"instanceIp": "10.9.9.9", "instanceIpFamily": "IPv4"}); err != nil {
		t.Fatal(err)
	}
	req, err := w2p["sccBrokerJoinCluster"].Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = req.Error(sc.NewError("BusyError", "later"))
	again := nextUpdate(t, w2p["sccBrokerJoinCluster"])
	if len(again.Brokers) != 2 {
		t.Fatalf("retried update %+v", again)
	}
	nextUpdate(t, w1p["sccBrokerJoinCluster"])
	if st := s.Stats(); st.BroadcastFailures == 0 || st.Brokers != 2 || st.Workers != 2 {
		t.Fatalf("stats %+v", st)
	}

	// A worker leaving is announced to the others.
	_ = w2.Close(1000, "")
	lu := nextUpdate(t, w1p["sccWorkerLeaveCluster"])
	if len(lu.Workers) != 1 {
		t.Fatalf("worker leave %+v", lu)
	}
}

func TestMajorOf(t *testing.T) {
	for v, want := range map[string]int{"9.2.0": 9, "10.0.1": 10, " 9.1.1": 9, "9.1": -1, "x9.1.1": -1, "9.1.1-beta": 9, "": -1, "+9.0.0": 9} {
		if got := majorOf(v); got != want {
			t.Errorf("majorOf(%q) = %d, want %d", v, got, want)
		}
	}
}
