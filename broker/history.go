package broker

import (
	"context"
	"errors"
	"time"
)

// Channel history (opt-in): a broker that implements History stores the
// publications of some channels, gives each a Position, delivers them to
// every subscribed instance in position order without gaps or duplicates
// (also across its own reconnections), and lets the hub read them back.
//
// Which channels keep history is the hub's decision, reported by
// HistoryHandler.History; every instance sharing a bus must give the same
// answer for a channel (the messages of history channels travel in another
// form than plain publishes).
//
// The contract, checked by brokertest.RunHistory:
//
//   - PublishHistory returns only once the broker has stored the
//     publication, with its position. Offsets of a channel are 1, 2, 3...
//     within one epoch.
//   - Every instance subscribed to a history channel gets
//     HistoryHandler.DeliverHistory for every publication stored after its
//     Subscribe returned, the publishing instance included, in offset
//     order, exactly once. After an outage of its connection the broker
//     reads what it missed from the history and delivers it before newer
//     publications. When that is impossible (the history was trimmed past
//     the last delivered position, or lost: a new epoch) it calls
//     HistoryHandler.HistoryLost, then goes on from the current position.
//   - ReadHistory returns stored publications, oldest first.

// Position is the place of a publication in its channel's history: a
// strictly increasing offset (1 for the first publication) within an
// epoch. The epoch changes whenever the history itself was lost (a Redis
// restarted without persistence, a history that expired entirely), so
// that offsets of an older epoch are never mistaken for current ones.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// HistoryOptions are the limits of a channel's history.
type HistoryOptions struct {
	// Size is the largest number of publications kept (the oldest are
	// dropped first). Must be positive.
	Size int
	// TTL is how long a publication is kept. When every publication of a
	// channel has expired the channel's history is forgotten, and its next
	// publication starts a new epoch. Must be positive (it is what bounds
	// memory with many channels).
	TTL time.Duration
}

// Valid reports whether o can be used.
func (o HistoryOptions) Valid() error {
	if o.Size <= 0 {
		return errors.New("broker: history Size must be positive")
	}
	if o.TTL <= 0 {
		return errors.New("broker: history TTL must be positive")
	}
	return nil
}

// Publication is one stored publication.
type Publication struct {
	Position
	Payload []byte
}

// HistoryQuery selects publications to read.
type HistoryQuery struct {
	// Since, when set, asks for the publications after it (recovery): the
	// oldest Limit of them. When nil, the newest Limit publications are
	// returned.
	Since *Position
	// Limit bounds the number of publications returned; 0 returns none
	// (only the current position).
	Limit int
}

// HistoryResult is the answer to ReadHistory.
type HistoryResult struct {
	// Publications, oldest first.
	Publications []Publication
	// Top is the position of the channel's latest publication (Offset 0
	// when the channel has no history yet), in the current epoch.
	Top Position
	// Recovered is false when Since was set and the publications right
	// after it are no longer stored (trimmed, expired, or Since is of
	// another epoch): the caller missed something it cannot get back.
	// Publications then holds the oldest ones still stored.
	Recovered bool
}

// ErrFuturePosition is returned by ReadHistory for a position beyond the
// channel's latest, in its current epoch.
var ErrFuturePosition = errors.New("broker: position is ahead of the channel's history")

// History is implemented by brokers that store channel history.
type History interface {
	Broker
	// PublishHistory stores payload in channel's history (limits opts)
	// and sends it to every instance subscribed to channel, this one
	// included. It returns the publication's position once it is stored.
	PublishHistory(ctx context.Context, channel string, payload []byte, opts HistoryOptions) (Position, error)
	// ReadHistory reads channel's history.
	ReadHistory(ctx context.Context, channel string, q HistoryQuery, opts HistoryOptions) (HistoryResult, error)
}

// HistoryHandler is a Handler that uses history. A History broker calls
// its methods when the Handler given to Start implements it.
type HistoryHandler interface {
	Handler
	// History reports whether channel keeps history, and its limits. It
	// must be fast and give the same answer for a channel on every
	// instance, all the time.
	History(channel string) (HistoryOptions, bool)
	// DeliverHistory is called, instead of Deliver, for every publication
	// of a history channel, in offset order, from the goroutine that calls
	// Deliver. It must return quickly.
	DeliverHistory(channel string, pub Publication)
	// HistoryLost is called when publications of channel after last (the
	// position last delivered) could not be delivered and cannot be read
	// back; delivery goes on from now, the next publication possibly in a
	// new epoch. Called from the goroutine that calls Deliver.
	HistoryLost(channel string, last Position, err error)
}

// ErrHistoryLost is the error HistoryLost receives when the history was
// trimmed past the last delivered position, or lost (a new epoch).
var ErrHistoryLost = errors.New("broker: publications missed and no longer in the history")

// HistoryMessage is one publication of a PublishHistoryBatch.
type HistoryMessage struct {
	Channel string
	Payload []byte
	Options HistoryOptions
}

// HistoryBatchPublisher is implemented by History brokers that can store
// several publications in one round trip. The hub hands its queued history
// publishes to PublishHistoryBatch, in order.
type HistoryBatchPublisher interface {
	// PublishHistoryBatch is PublishHistory for each message, in order
	// (the positions of one channel follow the order of msgs). It returns
	// one position per message, and nil errors when every message was
	// stored, else one error (nil for a message stored) per message.
	PublishHistoryBatch(ctx context.Context, msgs []HistoryMessage) ([]Position, []error)
}
