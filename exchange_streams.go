package socketcluster

import (
	"strings"

	"github.com/socketcluster-go/socketcluster/stream"
)

// Stream management of the exchange's channels as a whole and of one
// channel's event listeners (the reference's AGExchange and AGChannel
// methods of the same names). A channel's data consumers are its output;
// its subscribe/unsubscribe/subscribeFail listeners are its listeners.

// channelEventKey is the key of one of a channel's events ("subscribe",
// "unsubscribe", "subscribeFail") in Exchange.chEvs.
func channelEventKey(event, channel string) string { return event + "\x00" + channel }

// listenerNames returns the event-stream keys of channel that have
// consumers.
func (e *Exchange) listenerNames(channel string) []string {
	var out []string
	for _, n := range e.chEvs.Names() {
		if strings.HasSuffix(n, channelEventKey("", channel)) {
			out = append(out, n)
		}
	}
	return out
}

// CloseChannel ends the channel's data consumers and event listeners after
// their backlogs (closeChannel). The server's subscription is unchanged.
func (e *Exchange) CloseChannel(channel string) {
	e.data.Close(channel)
	e.Channel(channel).CloseAllListeners()
}

// KillChannel ends the channel's data consumers and event listeners now,
// dropping their backlogs (killChannel).
func (e *Exchange) KillChannel(channel string) {
	e.data.Kill(channel)
	e.Channel(channel).KillAllListeners()
}

// CloseAllChannels does CloseChannel for every channel (closeAllChannels).
func (e *Exchange) CloseAllChannels() {
	e.data.CloseAll()
	e.chEvs.CloseAll()
}

// KillAllChannels does KillChannel for every channel (killAllChannels).
func (e *Exchange) KillAllChannels() {
	e.data.KillAll()
	e.chEvs.KillAll()
}

// CloseAllChannelOutputs closes the data consumers of every channel, not
// their event listeners (closeAllChannelOutputs).
func (e *Exchange) CloseAllChannelOutputs() { e.data.CloseAll() }

// KillAllChannelOutputs kills the data consumers of every channel
// (killAllChannelOutputs).
func (e *Exchange) KillAllChannelOutputs() { e.data.KillAll() }

// CloseAllChannelListeners closes the event listeners of every channel, not
// their data consumers (closeAllChannelListeners).
func (e *Exchange) CloseAllChannelListeners() { e.chEvs.CloseAll() }

// KillAllChannelListeners kills the event listeners of every channel
// (killAllChannelListeners).
func (e *Exchange) KillAllChannelListeners() { e.chEvs.KillAll() }

// AllChannelsBackpressure is the largest backlog of any channel consumer,
// data or event (getAllChannelsBackpressure).
func (e *Exchange) AllChannelsBackpressure() int {
	return max(e.data.BackpressureAll(), e.chEvs.BackpressureAll())
}

// AllChannelOutputsConsumerStats lists the data consumers of every channel;
// each entry's Stream is its channel
// (getAllChannelOutputsConsumerStatsList).
func (e *Exchange) AllChannelOutputsConsumerStats() []stream.ConsumerStats {
	return e.data.StatsAll()
}

// CloseAllListeners closes every event listener of the channel.
func (c *Channel) CloseAllListeners() {
	for _, n := range c.e.listenerNames(c.name) {
		c.e.chEvs.Close(n)
	}
}

// KillAllListeners kills every event listener of the channel.
func (c *Channel) KillAllListeners() {
	for _, n := range c.e.listenerNames(c.name) {
		c.e.chEvs.Kill(n)
	}
}

// ListenerBackpressure is the largest backlog of the consumers of one of
// the channel's events.
func (c *Channel) ListenerBackpressure(event string) int {
	return c.e.chEvs.Backpressure(channelEventKey(event, c.name))
}

// AllListenersBackpressure is the largest backlog of any of the channel's
// event consumers.
func (c *Channel) AllListenersBackpressure() int {
	bp := 0
	for _, n := range c.e.listenerNames(c.name) {
		bp = max(bp, c.e.chEvs.Backpressure(n))
	}
	return bp
}

// ListenerConsumerStats lists the consumers of one of the channel's events;
// each entry's Stream is the event name.
func (c *Channel) ListenerConsumerStats(event string) []stream.ConsumerStats {
	stats := c.e.chEvs.Stats(channelEventKey(event, c.name))
	for i := range stats {
		stats[i].Stream = event
	}
	return stats
}

// KillListenerConsumer kills one consumer of the channel's events; an id
// that is not one of them is ignored.
func (c *Channel) KillListenerConsumer(id int) {
	for _, n := range c.e.listenerNames(c.name) {
		if c.e.chEvs.HasConsumer(n, id) {
			c.e.chEvs.KillConsumer(id)
			return
		}
	}
}
