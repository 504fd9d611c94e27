// Package mapping maps channel names to SCC broker URIs exactly as the
// Node workers of a SocketCluster cluster do (scc-broker-client 9.2.0 and
// its skeleton-rendezvous 1.x dependency), so that a Go worker and a Node
// worker send every channel to the same scc-broker instance.
//
// Two engines exist, as in scc-broker-client: SkeletonRendezvous (its
// default, "skeletonRendezvous") and Simple ("simple"). Both are pure
// functions of the site list and the key; a golden file generated from the
// JavaScript implementation (testdata/golden.json) checks that the results
// agree.
package mapping

import (
	"fmt"
)

// Engine names, as scc-broker-client's mappingEngine option.
const (
	EngineSkeletonRendezvous = "skeletonRendezvous"
	EngineSimple             = "simple"
)

// Mapper finds the site (broker URI) of a key (channel name). It is not
// safe for concurrent use with SetSites; FindSite alone may be called
// concurrently.
type Mapper interface {
	// SetSites replaces the site list.
	SetSites(sites []string)
	// FindSite returns the key's site; ok is false when there is none (an
	// empty site list).
	FindSite(key string) (site string, ok bool)
}

// New returns the mapper of an engine name ("" means skeletonRendezvous).
func New(engine string) (Mapper, error) {
	switch engine {
	case "", EngineSkeletonRendezvous:
		return NewSkeletonRendezvous(SkeletonOptions{})
	case EngineSimple:
		return &Simple{}, nil
	}
	return nil, fmt.Errorf("mapping engine %q: use %q or %q", engine, EngineSkeletonRendezvous, EngineSimple)
}
