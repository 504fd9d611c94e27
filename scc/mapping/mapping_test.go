package mapping

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// golden is testdata/golden.json, written by scc-interop's `npm run
// golden` from scc-broker-client 9.2.0's own mappers and hasher.
type golden struct {
	Keys        []string             `json:"keys"`
	HashToIndex [][2]json.RawMessage `json:"hashToIndex"`
	MD5Index    [][2]json.RawMessage `json:"md5Index"`
	Cases       []struct {
		Sites         []string `json:"sites"`
		SkeletonSites []string `json:"skeletonSites"`
		Skeleton      []int    `json:"skeleton"`
		Simple        []int    `json:"simple"`
	} `json:"cases"`
	Options []struct {
		Options struct {
			Fanout            int `json:"fanout"`
			TargetClusterSize int `json:"targetClusterSize"`
			MinClusterSize    int `json:"minClusterSize"`
		} `json:"options"`
		Sites         []string `json:"sites"`
		SkeletonSites []string `json:"skeletonSites"`
		Skeleton      []int    `json:"skeleton"`
	} `json:"options"`
	Levels [][]int `json:"levels"`
}

func loadGolden(t *testing.T) *golden {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Keys) < 2000 {
		t.Fatalf("golden file has %d keys", len(g.Keys))
	}
	return &g
}

func checkIndexes(t *testing.T, name string, rows [][2]json.RawMessage, moduli []int, f func(key string, m int) int) {
	t.Helper()
	bad := 0
	for _, row := range rows {
		var key string
		var want []int
		if err := json.Unmarshal(row[0], &key); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(row[1], &want); err != nil {
			t.Fatal(err)
		}
		for i, m := range moduli {
			if got := f(key, m); got != want[i] {
				if bad++; bad < 10 {
					t.Errorf("%s(%q, %d) = %d, JavaScript %d", name, key, m, got, want[i])
				}
			}
		}
	}
}

func TestHashToIndexGolden(t *testing.T) {
	g := loadGolden(t)
	checkIndexes(t, "hashToIndex", g.HashToIndex, []int{1, 2, 3, 7, 16}, HashToIndex)
	md5hex := func(key string, m int) int {
		s := &Simple{}
		sites := make([]string, m)
		for i := range sites {
			sites[i] = string(rune('a' + i))
		}
		s.SetSites(sites)
		site, _ := s.FindSite(key)
		return int(site[0] - 'a')
	}
	checkIndexes(t, "hashToIndex(md5hex)", g.MD5Index, []int{1, 2, 3, 5, 16}, md5hex)
}

func TestMappersGolden(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.Cases {
		sk, err := New(EngineSkeletonRendezvous)
		if err != nil {
			t.Fatal(err)
		}
		sk.SetSites(append(slices.Clone(c.Sites), c.Sites[:min(2, len(c.Sites))]...))
		if got := sk.(*SkeletonRendezvous).Sites(); !slices.Equal(got, c.SkeletonSites) && len(c.Sites) > 0 {
			t.Errorf("%d sites: clusters %q, JavaScript %q", len(c.Sites), got, c.SkeletonSites)
		}
		simple, _ := New(EngineSimple)
		simple.SetSites(c.Sites)
		bad := 0
		for i, key := range g.Keys {
			for _, m := range []struct {
				name string
				m    Mapper
				want int
			}{{"skeletonRendezvous", sk, c.Skeleton[i]}, {"simple", simple, c.Simple[i]}} {
				site, ok := m.m.FindSite(key)
				got := slices.Index(c.Sites, site)
				if !ok {
					got = -1
				}
				if got != m.want {
					if bad++; bad < 10 {
						t.Errorf("%s, %d sites: %q → site %d, JavaScript %d", m.name, len(c.Sites), key, got, m.want)
					}
				}
			}
		}
	}
	for _, c := range g.Options {
		o := c.Options
		m, err := NewSkeletonRendezvous(SkeletonOptions{Fanout: o.Fanout, TargetClusterSize: o.TargetClusterSize, MinClusterSize: o.MinClusterSize})
		if err != nil {
			t.Fatal(err)
		}
		m.SetSites(c.Sites)
		if got := m.Sites(); !slices.Equal(got, c.SkeletonSites) {
			t.Errorf("%+v: clusters %q, JavaScript %q", o, got, c.SkeletonSites)
		}
		for i, want := range c.Skeleton {
			site, _ := m.FindSite(g.Keys[i])
			if got := slices.Index(c.Sites, site); got != want {
				t.Errorf("%+v: %q → site %d, JavaScript %d", o, g.Keys[i], got, want)
			}
		}
	}
}

func TestVirtualLevelsGolden(t *testing.T) {
	g := loadGolden(t)
	for f, row := range g.Levels {
		fanout := f + 2
		for c, want := range row {
			if got := VirtualLevels(c+1, fanout); got != want {
				t.Errorf("VirtualLevels(%d, %d) = %d, JavaScript %d", c+1, fanout, got, want)
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New("consistent"); err == nil {
		t.Error("unknown engine accepted")
	}
	for _, f := range []int{1, 10, -1} {
		if _, err := NewSkeletonRendezvous(SkeletonOptions{Fanout: f}); err == nil {
			t.Errorf("fanout %d accepted", f)
		}
	}
	m, _ := New("")
	if _, ok := m.FindSite("x"); ok {
		t.Error("a site found in an empty list")
	}
	if HashToIndex("x", 0) != -1 {
		t.Error("modulo 0")
	}
}

// Moving one site in or out moves only the channels of that site
// (rendezvous hashing), which keeps resubscriptions small.
func TestSkeletonMinimalMoves(t *testing.T) {
	m, _ := NewSkeletonRendezvous(SkeletonOptions{})
	sites := []string{"ws://a:1", "ws://b:1", "ws://c:1", "ws://d:1"}
	m.SetSites(sites)
	before := map[string]string{}
	for i := range 2000 {
		k := "ch" + string(rune('a'+i%26)) + string(rune('0'+i%10)) + string(rune(i))
		before[k], _ = m.FindSite(k)
	}
	m.SetSites(sites[:3])
	for k, was := range before {
		now, _ := m.FindSite(k)
		if was != "ws://d:1" && now != was {
			t.Fatalf("%q moved from %s to %s though its site stayed", k, was, now)
		}
	}
}
