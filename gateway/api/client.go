package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls the API of a gateway.
type Client struct {
	// BaseURL is where the API is served, e.g. "http://127.0.0.1:8001"
	// (the methods are under BaseURL + "/api/").
	BaseURL string
	// Key is the API key.
	Key string
	// HTTP makes the requests (default http.DefaultClient).
	HTTP *http.Client
}

// CallError is a failure reported by the API.
type CallError struct {
	Status  int
	Code    string
	Message string
}

func (e *CallError) Error() string {
	return fmt.Sprintf("api: %d %s: %s", e.Status, e.Code, e.Message)
}

// Call calls method with params and decodes the result into out (when
// out is not nil).
func (c *Client) Call(ctx context.Context, method string, params, out any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/api/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "apikey "+c.Key)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *ErrorBody      `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return &CallError{Status: resp.StatusCode, Code: "bad_answer", Message: fmt.Sprintf("answer is not JSON: %.200s", raw)}
	}
	if env.Error != nil || resp.StatusCode != http.StatusOK {
		e := &CallError{Status: resp.StatusCode, Code: "unknown"}
		if env.Error != nil {
			e.Code, e.Message = env.Error.Code, env.Error.Message
		}
		return e
	}
	if out != nil {
		return json.Unmarshal(env.Result, out)
	}
	return nil
}

func rawData(data any) (json.RawMessage, error) {
	if r, ok := data.(json.RawMessage); ok {
		return r, nil
	}
	return json.Marshal(data)
}

// Publish publishes data (any JSON value) to channel.
func (c *Client) Publish(ctx context.Context, channel string, data any) (PublishResult, error) {
	return c.PublishMany(ctx, []string{channel}, data, "")
}

// PublishMany publishes data to channels; a non-empty idempotencyKey
// makes retries within the idempotency window no-ops.
func (c *Client) PublishMany(ctx context.Context, channels []string, data any, idempotencyKey string) (PublishResult, error) {
	raw, err := rawData(data)
	if err != nil {
		return PublishResult{}, err
	}
	var res PublishResult
	err = c.Call(ctx, "publish", PublishRequest{Channels: channels, Data: raw, IdempotencyKey: idempotencyKey}, &res)
	return res, err
}

// Broadcast publishes data to every channel of channels.
func (c *Client) Broadcast(ctx context.Context, channels []string, data any) (PublishResult, error) {
	raw, err := rawData(data)
	if err != nil {
		return PublishResult{}, err
	}
	var res PublishResult
	err = c.Call(ctx, "broadcast", PublishRequest{Channels: channels, Data: raw}, &res)
	return res, err
}

// Disconnect closes the sockets of t on every instance.
func (c *Client) Disconnect(ctx context.Context, t Target, code int, reason string) (CommandResult, error) {
	var res CommandResult
	err := c.Call(ctx, "disconnect", DisconnectRequest{Target: t, Code: code, Reason: reason}, &res)
	return res, err
}

// Kick removes the sockets of t from channel on every instance.
func (c *Client) Kick(ctx context.Context, t Target, channel string, message any) (CommandResult, error) {
	var raw json.RawMessage
	if message != nil {
		var err error
		if raw, err = rawData(message); err != nil {
			return CommandResult{}, err
		}
	}
	var res CommandResult
	err := c.Call(ctx, "kick", KickRequest{Target: t, Channel: channel, Message: raw}, &res)
	return res, err
}

// Channels lists channels and subscriber counts, on this instance
// (cluster false) or on every instance.
func (c *Client) Channels(ctx context.Context, cluster bool, pattern string) (map[string]int, error) {
	scope := "local"
	if cluster {
		scope = "cluster"
	}
	var res ChannelsResult
	err := c.Call(ctx, "channels", ChannelsRequest{Scope: scope, Pattern: pattern}, &res)
	return res.Channels, err
}

// Presence lists the sockets present in channel.
func (c *Client) Presence(ctx context.Context, channel string) (PresenceResult, error) {
	var res PresenceResult
	err := c.Call(ctx, "presence", ChannelRequest{Channel: channel}, &res)
	return res, err
}

// PresenceStats counts them.
func (c *Client) PresenceStats(ctx context.Context, channel string) (PresenceStatsResult, error) {
	var res PresenceStatsResult
	err := c.Call(ctx, "presenceStats", ChannelRequest{Channel: channel}, &res)
	return res, err
}

// History reads channel's history (see HistoryRequest).
func (c *Client) History(ctx context.Context, r HistoryRequest) (HistoryResult, error) {
	var res HistoryResult
	err := c.Call(ctx, "history", r, &res)
	return res, err
}

// Info describes the instance and the cluster.
func (c *Client) Info(ctx context.Context) (InfoResult, error) {
	var res InfoResult
	err := c.Call(ctx, "info", struct{}{}, &res)
	return res, err
}
