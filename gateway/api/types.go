// Package api is the gateway's server API over HTTP: a backend publishes,
// disconnects and kicks sockets, lists channels, reads presence, history
// and server info with plain JSON requests authenticated by an API key.
//
// Every method is POST /api/<method> with a JSON object body; the answer is
// {"result": …} with status 200, or {"error": {"code": …, "message": …}}
// with the status of the failure:
//
//	400 bad JSON, unknown field, missing or invalid parameter or channel name
//	401 missing or wrong API key (the key goes in "Authorization: apikey <key>"
//	    or "X-API-Key: <key>")
//	404 unknown method, or a channel without presence tracking
//	405 a method other than POST
//	413 a body over the size limit
//	501 a feature that is not enabled (history)
//	503 the broker or the shared store failed
//
// The methods, their parameters and answers are the types of this file;
// openapi.yaml describes the same. Client is a Go client for it.
package api

import (
	"encoding/json"

	"github.com/socketcluster-go/socketcluster/gateway/store"
)

// PublishRequest publishes data to one channel or many (publish), or to
// many (broadcast: Channels only).
type PublishRequest struct {
	Channel  string          `json:"channel,omitempty"`
	Channels []string        `json:"channels,omitempty"`
	Data     json.RawMessage `json:"data"`
	// IdempotencyKey, when set, makes a retry within the gateway's
	// idempotency window (cluster-wide) a no-op answered with
	// Duplicate: true.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

// PublishResult says what was published.
type PublishResult struct {
	Channels  []string `json:"channels"`
	Duplicate bool     `json:"duplicate"`
}

// Target picks sockets: one socket by id, or every socket of a user (the
// identity given by the backend at connect, else the token's "sub").
// Exactly one of the two.
type Target struct {
	SocketID string `json:"socketId,omitempty"`
	User     string `json:"user,omitempty"`
}

// DisconnectRequest closes sockets on every instance.
type DisconnectRequest struct {
	Target
	Code   int    `json:"code,omitempty"` // 4000-4999; default 4000 + reason "Disconnected by the server"
	Reason string `json:"reason,omitempty"`
}

// KickRequest removes sockets from a channel on every instance; the
// client gets #kickOut with the message.
type KickRequest struct {
	Target
	Channel string          `json:"channel"`
	Message json.RawMessage `json:"message,omitempty"`
}

// CommandResult is the answer of disconnect and kick: the command is
// broadcast to every instance; Local counts the sockets it concerned on
// the instance that took the request.
type CommandResult struct {
	Local int `json:"local"`
}

// ChannelsRequest lists channels with subscribers.
type ChannelsRequest struct {
	// Scope is "local" (this instance, exact) or "cluster" (every
	// instance, as of their last report). Default "cluster".
	Scope string `json:"scope,omitempty"`
	// Pattern filters names (path.Match glob); default all.
	Pattern string `json:"pattern,omitempty"`
}

// ChannelsResult maps channel names to subscriber counts.
type ChannelsResult struct {
	Channels map[string]int `json:"channels"`
}

// ChannelRequest names one channel (presence, presenceStats).
type ChannelRequest struct {
	Channel string `json:"channel"`
}

// Position is a publication's place in its channel's history.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// HistoryRequest reads a channel's history: the newest Limit
// publications, or with Since the oldest Limit after it. Limit omitted:
// as many as the channel keeps.
type HistoryRequest struct {
	Channel string    `json:"channel"`
	Limit   *int      `json:"limit,omitempty"`
	Since   *Position `json:"since,omitempty"`
}

// PresenceResult lists the sockets present in a channel.
type PresenceResult struct {
	Channel string        `json:"channel"`
	Clients []store.Entry `json:"clients"`
	Count   int           `json:"count"`
	Users   int           `json:"users"`
}

// PresenceStatsResult counts them.
type PresenceStatsResult struct {
	Channel string `json:"channel"`
	Count   int    `json:"count"`
	Users   int    `json:"users"`
}

// HistoryResult lists publications of a channel, oldest first, with the
// channel's latest position.
type HistoryResult struct {
	Channel string `json:"channel"`
	Position
	// Recovered (with Since) is false when publications right after Since
	// are no longer kept, or Since is of another epoch.
	Recovered    *bool                `json:"recovered,omitempty"`
	Publications []HistoryPublication `json:"publications"`
}

// HistoryPublication is one publication of a history.
type HistoryPublication struct {
	Position
	Data json.RawMessage `json:"data,omitempty"` // absent: published without data
}

// InfoResult describes this instance and the cluster.
type InfoResult struct {
	Instance  string           `json:"instance"`
	Local     json.RawMessage  `json:"local"`     // this instance's report
	Instances []store.Instance `json:"instances"` // every live instance's last report
}

// ErrorBody is the error of a failed call.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
