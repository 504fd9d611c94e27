// Package history holds the types of channel history, the opt-in part of
// socketcluster-go that gives channels positions, recovery and exactly-once
// in-order delivery (docs/recovery.md):
//
//   - Rule selects channels and how much of their history is kept
//     (socketcluster.Options.History);
//   - Page and Publication are what socketcluster.Server.History reads;
//   - Stats are the counters socketcluster.Server.HistoryStats returns.
//
// The package has no state: storing and reading history is the broker's job
// (broker.History), applying the rules the server's.
package history

import (
	"errors"
	"fmt"
	"time"

	"github.com/socketcluster-go/socketcluster/broker"
	"github.com/socketcluster-go/socketcluster/protocol"
)

// Rule makes the channels whose name matches one of Patterns keep their
// last Size publications for TTL. On such channels
//
//   - every publication has a position (offset and epoch), carried by the
//     #publish packets;
//   - a publish is acknowledged only once the broker stored it, and is
//     then delivered to every subscriber, on every instance, exactly once
//     and in order, also across broker outages;
//   - a client can resubscribe with the last position it saw and get what
//     it missed (docs/recovery.md), and read the history (the sc.history
//     procedure, Server.History).
//
// Every instance must have the same rules. The broker must implement
// broker.History (memory, Redis, NATS with JetStream).
type Rule struct {
	// Patterns select the channels: * matches any run of characters,
	// every other character itself ("chat.*", "news", "*").
	Patterns []string
	// Size is the largest number of publications kept per channel,
	// 1..MaxSize.
	Size int
	// TTL is how long a publication is kept. A channel whose publications
	// all expired is forgotten: its next publication starts a new epoch.
	TTL time.Duration
}

// MaxSize bounds Rule.Size: a recovery or a history read returns at most
// Size publications in one answer.
const MaxSize = 100000

// Validate reports every problem of rules, in order, as one error naming
// the field (Options.History[i]) and what to set instead; nil when there
// is none.
func Validate(rules []Rule) error {
	var errs []error
	for i, r := range rules {
		if len(r.Patterns) == 0 {
			errs = append(errs, fmt.Errorf("socketcluster: Options.History[%d] has no Patterns", i))
		}
		if r.Size <= 0 || r.Size > MaxSize {
			errs = append(errs, fmt.Errorf("socketcluster: Options.History[%d].Size is %d; use 1..%d", i, r.Size, MaxSize))
		}
		if r.TTL <= 0 {
			errs = append(errs, fmt.Errorf("socketcluster: Options.History[%d].TTL is %v; it must be positive (it is what bounds memory with many channels)", i, r.TTL))
		}
	}
	return errors.Join(errs...)
}

// Match returns the limits of the first rule with a pattern matching
// channel; ok is false when no rule matches (the channel keeps no history).
func Match(rules []Rule, channel string) (opts broker.HistoryOptions, ok bool) {
	for _, r := range rules {
		for _, p := range r.Patterns {
			if Glob(p, channel) {
				return broker.HistoryOptions{Size: r.Size, TTL: r.TTL}, true
			}
		}
	}
	return broker.HistoryOptions{}, false
}

// Glob reports whether name matches pattern, where * matches any run of
// characters (also none) and every other character itself.
func Glob(pattern, name string) bool {
	// Iterative matching with one backtrack point: linear in practice.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Position is the place of a publication in its channel's history.
type Position = broker.Position

// Publication is one publication read from a channel's history.
type Publication struct {
	Position
	Data protocol.Data // raw JSON; nil for undefined
}

// Page is what a history read returns.
type Page struct {
	Publications []Publication // oldest first
	Top          Position      // the channel's latest position
	// Recovered is false when Since was set and publications right after
	// it are no longer stored (or it is of another epoch).
	Recovered bool
}

// Stats are the counters of channel history and broker outages of one
// server.
type Stats struct {
	Publishes        int64 // publishes stored with history (acknowledged)
	PublishFailures  int64 // publishes on history channels the broker did not confirm
	Recoveries       int64 // client recoveries that got every missed publication
	RecoveryFailures int64 // client recoveries refused: position too old or of another epoch
	Lost             int64 // times this instance missed publications it could not read back
	BrokerOutages    int64 // broker connection losses reported (non-history channels lose what is published meanwhile)
}
