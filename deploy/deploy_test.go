// Package deploy_test checks the operator's files in deploy/: the Grafana
// dashboard and the alert rules query only metrics scserver exports, the
// alert rules pass promtool's unit tests, the systemd unit passes
// systemd-analyze, the Helm chart renders (and refuses values that cannot
// work), and the runtime image builds and runs.
//
// Tests that need an outside tool (promtool, systemd-analyze, helm,
// podman) skip with a message when it is missing, unless SC_REQUIRE_TOOLS=1
// (as .ci/run sets, after installing them): then they fail.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sc "github.com/socketcluster-go/socketcluster"
	"github.com/socketcluster-go/socketcluster/prommetrics"
)

// tool returns the path of an outside command, or skips the test (fails it
// under SC_REQUIRE_TOOLS=1) when it is not installed.
func tool(t *testing.T, name string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range extra {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed (bash .ci/run installs it)", name)
	if os.Getenv("SC_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + "; SC_REQUIRE_TOOLS=1")
	}
	t.Skip("SKIPPED: " + msg)
	return ""
}

func run(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustRun(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, err := run(t, dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// exported returns the names of the metrics scserver serves.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	srv, err := sc.New(sc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Terminate)
	mfs, err := prommetrics.NewRegistry(srv, "socketcluster").Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

var metricName = regexp.MustCompile(`\b(?:socketcluster|go|process)_[a-zA-Z0-9_]+\b`)

// unknownMetrics returns the metric names in expr that are not exported
// (a histogram's or summary's _bucket, _sum and _count count as its own).
func unknownMetrics(expr string, names map[string]bool) []string {
	var bad []string
	for _, m := range metricName.FindAllString(expr, -1) {
		base := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suf); ok && names[b] {
				base = b
			}
		}
		if !names[base] {
			bad = append(bad, m)
		}
	}
	return bad
}

// The dashboard queries only metrics the server exports, so the two
// cannot drift apart.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("grafana/socketcluster.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana/socketcluster.json: %v", err)
	}
	names := exported(t)
	var exprs []string
	graphs := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			graphs++
			if len(p.Targets) == 0 {
				t.Errorf("panel %q queries nothing", p.Title)
			}
			for _, tg := range p.Targets {
				if !metricName.MatchString(tg.Expr) {
					t.Errorf("panel %q: query %q names no metric", p.Title, tg.Expr)
				}
				exprs = append(exprs, p.Title+": "+tg.Expr)
			}
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			exprs = append(exprs, "variable "+v.Name+": "+v.Definition)
		}
	}
	if graphs < 10 {
		t.Errorf("only %d panels", graphs)
	}
	for _, e := range exprs {
		if bad := unknownMetrics(e, names); len(bad) > 0 {
			t.Errorf("%s\n\tqueries %v, which scserver does not export", e, bad)
		}
	}
	// The figures an on-call engineer needs are all there.
	all := strings.Join(exprs, "\n")
	for _, m := range []string{"socketcluster_clients", "socketcluster_handshakes_total", "socketcluster_publishes_total",
		"socketcluster_deliveries_total", "socketcluster_received_bytes_total", "socketcluster_sent_bytes_total",
		"socketcluster_slow_consumers_total", "socketcluster_broker_connected", "socketcluster_broker_errors_total",
		"go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		if !strings.Contains(all, m) {
			t.Errorf("no panel shows %s", m)
		}
	}
	// A metric that does not exist is caught (the check can fail).
	if bad := unknownMetrics("rate(socketcluster_no_such_thing_total[5m])", names); len(bad) != 1 {
		t.Errorf("an unknown metric was not reported: %v", bad)
	}
}

type panel struct {
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

var exprLine = regexp.MustCompile(`(?m)^\s*expr:\s*(.+)$`)

// The alert rules query only exported metrics and cover what the issue
// asks for.
func TestAlertRulesQueryExportedMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := exported(t)
	exprs := exprLine.FindAllStringSubmatch(string(raw), -1)
	if len(exprs) < 4 {
		t.Fatalf("only %d rules", len(exprs))
	}
	for _, m := range exprs {
		if bad := unknownMetrics(m[1], names); len(bad) > 0 {
			t.Errorf("rule %q queries %v, which scserver does not export", m[1], bad)
		}
	}
	for _, a := range []string{"SocketClusterBrokerDown", "SocketClusterSlowConsumerStorm", "SocketClusterDrainStuck"} {
		if !strings.Contains(string(raw), "alert: "+a+"\n") {
			t.Errorf("no %s rule", a)
		}
	}
}

// promtool checks the rules and runs their unit tests (alerts_test.yml).
func TestAlertRulesWithPromtool(t *testing.T) {
	t.Parallel()
	promtool := tool(t, "promtool")
	mustRun(t, "prometheus", promtool, "check", "rules", "alerts.yml")
	out := mustRun(t, "prometheus", promtool, "test", "rules", "alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// scserverBinary builds a static scserver once per test run.
func scserverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "sc-deploy-test-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(buildDir, "scserver"), "../cmd/scserver")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/scserver: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "scserver")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// systemd-analyze verify finds nothing to say about the unit (it only
// warns about unknown or misspelt settings, so any output is a failure).
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	analyze := tool(t, "systemd-analyze")
	raw, err := os.ReadFile("systemd/scserver.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"ExecStart=/usr/local/bin/scserver\n", "ExecReload=/bin/kill -HUP $MAINPID\n",
		"NoNewPrivileges=yes\n", "PrivateTmp=yes\n", "ProtectSystem=strict\n", "LimitNOFILE=1048576\n",
		"DynamicUser=yes\n", "KillSignal=SIGTERM\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit has no %q", strings.TrimSpace(want))
		}
	}
	// systemd-analyze checks that ExecStart exists: point it at a build.
	bin := scserverBinary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "scserver.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/scserver", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, dir, analyze, "verify", path)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// And it does complain about a misspelt setting (the check can fail).
	bad := filepath.Join(dir, "bad.service")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(must(os.ReadFile(path))), "NoNewPrivileges=", "NoNewPrivilege=", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := run(t, dir, analyze, "verify", bad); !strings.Contains(out, "NoNewPrivilege") {
		t.Errorf("systemd-analyze verify said nothing about a misspelt setting: %q", out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func helmTemplate(t *testing.T, helm string, args ...string) (string, error) {
	t.Helper()
	return run(t, "helm", helm, append([]string{"template", "sc", "socketcluster", "--kube-version", "1.31.0"}, args...)...)
}

// The chart lints, renders what a deployment needs, and refuses values
// that cannot work with a message that says why.
func TestHelmChart(t *testing.T) {
	t.Parallel()
	helm := tool(t, "helm", filepath.Join(goBin(), "helm"))
	mustRun(t, "helm", helm, "lint", "--kube-version", "1.31.0", "socketcluster")

	out, err := helmTemplate(t, helm)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	for _, want := range []string{
		"kind: Deployment", "kind: Service",
		"path: /readyz", "path: /healthz",
		"preStop:\n              sleep:\n                seconds: 5",
		"terminationGracePeriodSeconds: 35", // 5 + 5 + 20 + 5
		"name: SC_DRAIN_DELAY\n              value: \"5s\"",
		"name: SC_DRAIN_TIMEOUT\n              value: \"20s\"",
		"name: SC_METRICS_ADDR\n              value: \":9100\"",
		"memory: \"103Mi\"", // 64 MiB + 10 000 connections × 4 KiB
		"cpu: \"200m\"",     // 0.1 core + 100 000 deliveries/s × 1 µs
		"runAsNonRoot: true", "readOnlyRootFilesystem: true",
		"prometheus.io/port: \"9100\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the default rendering has no %q", want)
		}
	}
	if strings.Contains(out, "kind: Secret") || strings.Contains(out, "SC_ADMIN") {
		t.Error("default rendering has a Secret or admin settings")
	}

	out, err = helmTemplate(t, helm, "--set", "replicaCount=3,broker.url=redis://redis:6379,auth.key=k1,admin.enabled=true,admin.password=pw,drain.drainTimeoutSeconds=60,sizing.connections=100000")
	if err != nil {
		t.Fatalf("helm template (cluster): %v\n%s", err, out)
	}
	for _, want := range []string{"replicas: 3", "value: \"redis://redis:6379\"", "kind: Secret",
		"auth-key: \"azE=\"", "admin-password: \"cHc=\"", "name: SC_ADMIN_ADDR", "name: SC_ADMIN_PASSWORD",
		"containerPort: 9200", "terminationGracePeriodSeconds: 75", "memory: \"454Mi\""} {
		if !strings.Contains(out, want) {
			t.Errorf("the cluster rendering has no %q", want)
		}
	}

	for _, c := range []struct{ set, msg string }{
		{"replicaCount=2", "replicas would not share channels"},
		{"replicaCount=0", "run at least 1 replica"},
		{"replicaCount=many", "replicaCount must be a number"},
		{"broker.url=http://x", "use memory, redis://"},
		{"broker.url=nats://n:4222", "needs auth.key or auth.existingSecret"},
		{"admin.enabled=true", "admin.enabled needs admin.password"},
		{"port=70000", "port is 70000"},
		{"metrics.port=8000", "must differ"},
		{"drain.drainTimeoutSeconds=0", "drainTimeoutSeconds must be at least 1"},
		{"path=socketcluster", "must start with /"},
	} {
		out, err := helmTemplate(t, helm, "--set", c.set)
		if err == nil {
			t.Errorf("--set %s rendered:\n%.300s", c.set, out)
		} else if !strings.Contains(out, c.msg) {
			t.Errorf("--set %s: error %q does not say %q", c.set, strings.TrimSpace(out), c.msg)
		}
	}
}

func goBin() string {
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	return filepath.Join(strings.TrimSpace(string(out)), "bin")
}

// The multi-stage Dockerfile builds a static binary onto an empty image
// run as a non-root user. Building it needs base images from a registry,
// which this machine cannot reach; its runtime stage is the same as
// Dockerfile.runtime's, which TestRuntimeImage builds.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for _, want := range []string{"AS build", "CGO_ENABLED=0 go build", "./cmd/scserver", "\nFROM scratch\n", "\nUSER 65532:65532\n", "ENTRYPOINT [\"/scserver\"]"} {
		if !strings.Contains(df, want) {
			t.Errorf("docker/Dockerfile has no %q", want)
		}
	}
	rt := string(must(os.ReadFile("docker/Dockerfile.runtime")))
	final := df[strings.LastIndex(df, "\nFROM scratch\n"):]
	for _, line := range []string{"USER 65532:65532", "EXPOSE 8000", "ENTRYPOINT [\"/scserver\"]"} {
		if !strings.Contains(final, line) || !strings.Contains(rt, line) {
			t.Errorf("the two Dockerfiles' runtime stages differ on %q", line)
		}
	}
}

// The runtime image builds from a static binary with podman; where the
// machine lets podman run containers, the container serves /healthz and
// drains on SIGTERM.
func TestRuntimeImage(t *testing.T) {
	t.Parallel()
	podman := tool(t, "podman")
	bin := scserverBinary(t)
	ctxDir := t.TempDir()
	copyFile(t, bin, filepath.Join(ctxDir, "scserver"), 0o755)
	copyFile(t, "/etc/ssl/certs/ca-certificates.crt", filepath.Join(ctxDir, "ca-certificates.crt"), 0o644)
	dockerfile, err := filepath.Abs("docker/Dockerfile.runtime")
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("localhost/scserver-test:%d", time.Now().UnixNano())
	mustRun(t, ctxDir, podman, "build", "-q", "-f", dockerfile, "-t", tag, ".")
	t.Cleanup(func() { _, _ = run(t, ctxDir, podman, "rmi", "-f", tag) })

	cfg := strings.TrimSpace(mustRun(t, ctxDir, podman, "image", "inspect", "--format", "{{.Config.User}} {{json .Config.Entrypoint}}", tag))
	if cfg != `65532:65532 ["/scserver"]` {
		t.Errorf("image user and entrypoint: %s", cfg)
	}
	// The image holds exactly the binary built (no shell, nothing else to run).
	name := strings.TrimPrefix(strings.ReplaceAll(tag, ":", "-"), "localhost/")
	mustRun(t, ctxDir, podman, "create", "--name", name, tag)
	t.Cleanup(func() { _, _ = run(t, ctxDir, podman, "rm", "-f", name) })
	mustRun(t, ctxDir, podman, "cp", name+":/scserver", filepath.Join(ctxDir, "copied"))
	if !bytes.Equal(must(os.ReadFile(bin)), must(os.ReadFile(filepath.Join(ctxDir, "copied")))) {
		t.Error("the image's /scserver is not the binary built")
	}
	if out, err := run(t, ctxDir, podman, "cp", name+":/bin/sh", filepath.Join(ctxDir, "sh")); err == nil {
		t.Errorf("the image has a shell: %s", out)
	}
	mustRun(t, ctxDir, podman, "rm", "-f", name)

	port := freePort(t)
	out, err := run(t, ctxDir, podman, "run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:8000", port), tag, "-drain-delay", "0s")
	if err != nil {
		if strings.Contains(out, "OCI") || strings.Contains(out, "crun") || strings.Contains(out, "runc") || strings.Contains(out, "cgroup") {
			// The build and the image's content were checked above.
			t.Skipf("SKIPPED running the container: this machine's container runtime cannot start containers (%s); the image was built and inspected", firstLine(out))
		}
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			logs, _ := run(t, ctxDir, podman, "logs", name)
			t.Fatalf("GET %s: %v\n%s", url, err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mustRun(t, ctxDir, podman, "stop", "-t", "30", name)
	if code := strings.TrimSpace(mustRun(t, ctxDir, podman, "inspect", "--format", "{{.State.ExitCode}}", name)); code != "0" {
		logs, _ := run(t, ctxDir, podman, "logs", name)
		t.Errorf("exit code after SIGTERM: %s\n%s", code, logs)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The list of files here is what docs/production.md describes.
func TestDeployFilesListed(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/production.md")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") || strings.Contains(p, "/templates/") || strings.HasPrefix(filepath.Base(p), ".") {
			return err
		}
		files = append(files, "deploy/"+filepath.ToSlash(p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, f := range files {
		if !strings.Contains(string(doc), f) && !strings.Contains(string(doc), filepath.Dir(f)+"/") {
			t.Errorf("docs/production.md does not mention %s", f)
		}
	}
}
