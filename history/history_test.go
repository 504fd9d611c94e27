package history_test

import (
	"strings"
	"testing"
	"time"

	"github.com/socketcluster-go/socketcluster/history"
)

func TestGlob(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"news", "news", true},
		{"news", "news2", false},
		{"chat.*", "chat.room", true},
		{"chat.*", "chat.", true},
		{"chat.*", "chat", false},
		{"*.log", "a.b.log", true},
		{"*.log", "a.b.logs", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"a**", "a", true},
		{"", "", true},
		{"", "x", false},
	}
	for _, c := range cases {
		if got := history.Glob(c.pattern, c.name); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

func TestMatchFirstRuleWins(t *testing.T) {
	t.Parallel()
	rules := []history.Rule{
		{Patterns: []string{"a.*"}, Size: 5, TTL: time.Minute},
		{Patterns: []string{"*"}, Size: 9, TTL: time.Hour},
	}
	if o, ok := history.Match(rules, "a.x"); !ok || o.Size != 5 || o.TTL != time.Minute {
		t.Fatalf("a.x: %+v %v", o, ok)
	}
	if o, ok := history.Match(rules, "b"); !ok || o.Size != 9 || o.TTL != time.Hour {
		t.Fatalf("b: %+v %v", o, ok)
	}
	if _, ok := history.Match(rules[:1], "b"); ok {
		t.Fatal("b matched a.*")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	if err := history.Validate([]history.Rule{{Patterns: []string{"*"}, Size: 1, TTL: time.Second}}); err != nil {
		t.Fatal(err)
	}
	err := history.Validate([]history.Rule{
		{Size: 0, TTL: 0},
		{Patterns: []string{"x"}, Size: history.MaxSize + 1, TTL: time.Second},
	})
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		"Options.History[0] has no Patterns",
		"Options.History[0].Size is 0",
		"Options.History[0].TTL is 0s",
		"Options.History[1].Size is 100001",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, lines[i], w)
		}
	}
}
