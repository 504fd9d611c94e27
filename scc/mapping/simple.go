package mapping

import (
	"crypto/md5"
	"encoding/hex"
)

// Simple is scc-broker-client's simple mapper: the site at index
// HashToIndex(md5hex(key), len(sites)) of the list in the order given.
// Every worker must then receive the same list in the same order, which
// scc-state does not promise; prefer SkeletonRendezvous.
type Simple struct {
	sites []string
}

// SetSites implements Mapper.
func (m *Simple) SetSites(sites []string) { m.sites = append([]string(nil), sites...) }

// FindSite implements Mapper.
func (m *Simple) FindSite(key string) (string, bool) {
	if len(m.sites) == 0 {
		return "", false
	}
	sum := md5.Sum([]byte(key))
	return m.sites[HashToIndex(hex.EncodeToString(sum[:]), len(m.sites))], true
}
