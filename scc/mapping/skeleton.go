package mapping

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
)

// SkeletonOptions are skeleton-rendezvous's options; zero fields take its
// defaults. Only its default hash, MD5, is supported.
type SkeletonOptions struct {
	Fanout            int // 2..9, default 2
	TargetClusterSize int // default 16
	MinClusterSize    int // default TargetClusterSize
}

// SkeletonRendezvous is skeleton-rendezvous 1.1.x (rendezvous hashing
// over a skeleton of virtual levels), the default mapper of
// scc-broker-client: sites are deduplicated, sorted (by UTF-16 code
// units, as JavaScript's sort), cut into clusters of TargetClusterSize
// (a short last cluster is spread over the others), a key walks
// ceil(log_fanout(clusters)) levels of MD5 comparisons to a cluster, then
// takes the site of highest MD5 weight in it.
type SkeletonRendezvous struct {
	fanout, target, min int
	clusters            [][]string
	levels              int
}

// NewSkeletonRendezvous returns a mapper with no sites.
func NewSkeletonRendezvous(o SkeletonOptions) (*SkeletonRendezvous, error) {
	if o.Fanout > 9 || (o.Fanout != 0 && o.Fanout < 2) {
		return nil, fmt.Errorf("skeleton-rendezvous: fanout %d: use 2 to 9", o.Fanout)
	}
	m := &SkeletonRendezvous{fanout: o.Fanout, target: o.TargetClusterSize, min: o.MinClusterSize}
	if m.fanout == 0 {
		m.fanout = 2
	}
	if m.target <= 0 {
		m.target = 16
	}
	if m.min <= 0 {
		m.min = m.target
	}
	m.SetSites(nil)
	return m, nil
}

// compareUTF16 orders strings as JavaScript's default sort does.
func compareUTF16(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

// VirtualLevels is ceil(log(clusters)/log(fanout)) in float64, as the
// JavaScript computes it (0 for one cluster or none).
func VirtualLevels(clusters, fanout int) int {
	if clusters <= 0 {
		return 0 // -Infinity in JavaScript: no level is walked
	}
	return int(math.Ceil(math.Log(float64(clusters)) / math.Log(float64(fanout))))
}

// SetSites implements Mapper.
func (m *SkeletonRendezvous) SetSites(in []string) {
	seen := make(map[string]bool, len(in))
	sites := make([]string, 0, len(in))
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			sites = append(sites, s)
		}
	}
	slices.SortStableFunc(sites, compareUTF16)
	count := (len(sites) + m.target - 1) / m.target
	clusters := make([][]string, count)
	idx := 0
	for _, s := range sites {
		clusters[idx] = append(clusters[idx], s)
		if len(clusters[idx]) >= m.target {
			idx++
		}
	}
	if count > 1 {
		last := clusters[count-1]
		if len(last) < m.min {
			clusters = clusters[:count-1]
			count--
			idx = 0
			for _, s := range last {
				clusters[idx] = append(clusters[idx], s)
				idx = (idx + 1) % count
			}
		}
	}
	m.clusters = clusters
	m.levels = VirtualLevels(count, m.fanout)
}

// Sites returns the sites, cluster by cluster (getSites).
func (m *SkeletonRendezvous) Sites() []string {
	var out []string
	for _, c := range m.clusters {
		out = append(out, c...)
	}
	return out
}

// maxSalt bounds the retries of a key whose walk lands on a cluster that
// does not exist (each succeeds with probability at least 1/fanout, so
// the bound is never reached in practice).
const maxSalt = 10000

// FindSite implements Mapper.
func (m *SkeletonRendezvous) FindSite(key string) (string, bool) {
	var buf []byte
	for salt := 0; salt < maxSalt; salt++ {
		saltString := ""
		if salt > 0 {
			saltString = strconv.Itoa(salt)
		}
		path := make([]byte, 0, m.levels)
		for i := 0; i < m.levels; i++ {
			var highest [md5.Size]byte
			target := 0
			for j := 0; j < m.fanout; j++ {
				buf = append(buf[:0], key...)
				buf = append(buf, saltString...)
				buf = strconv.AppendInt(buf, int64(i), 10)
				buf = strconv.AppendInt(buf, int64(j), 10)
				h := md5.Sum(buf)
				if j == 0 || bytes.Compare(h[:], highest[:]) > 0 {
					highest, target = h, j
				}
			}
			path = append(path, byte('0'+target))
		}
		index := 0
		for _, d := range path {
			index = index*m.fanout + int(d-'0')
		}
		if index >= len(m.clusters) {
			if index == 0 {
				return "", false
			}
			continue
		}
		cluster := m.clusters[index]
		// key + salt + path, salt as a number (0 on the first walk).
		prefix := append([]byte(key), strconv.Itoa(salt)...)
		prefix = append(prefix, path...)
		best := 0
		var highest [md5.Size]byte
		for k, site := range cluster {
			buf = append(append(buf[:0], prefix...), site...)
			h := md5.Sum(buf)
			if k == 0 || bytes.Compare(h[:], highest[:]) > 0 {
				highest, best = h, k
			}
		}
		return cluster[best], true
	}
	return m.clusters[0][0], true
}
