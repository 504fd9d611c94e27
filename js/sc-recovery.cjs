'use strict';

// sc-recovery: channel recovery for the official socketcluster-client
// (versions 15 and later), against a socketcluster-go server with channel
// history (docs/recovery.md). No fork of the client is needed:
//
//   - on a history channel the server's #publish packets carry the
//     publication's position ("offset", "epoch"); the client ignores these
//     fields, this helper reads them from the socket's 'message' events;
//   - the client resubscribes its channels after every reconnection with
//     the subscription's `data`; this helper keeps
//     data.recover = {offset, epoch} up to date in that object, so the
//     resubscription asks the server for what was missed;
//   - the server answers every subscription to a history channel with an
//     `sc.recovery` event {channel, offset, epoch, recovered?, missed?}
//     before the publications; the helper passes it to onRecovery.
//
// Usage:
//
//   const {withRecovery} = require('./sc-recovery.cjs');
//   const socket = socketClusterClient.create({...});
//   const recovery = withRecovery(socket, {
//     onRecovery({channel, recovered, offset, epoch, missed}) {
//       if (recovered === false) reloadStateOf(channel); // publications were lost
//     },
//   });
//   const channel = recovery.subscribe('chat.room1');  // instead of socket.subscribe
//   for await (const data of channel) { ... }
//
// Positions are JSON text; with a binary codec (codecEngine) pass
// {decode: (message) => packet} in the options.

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function validPosition(offset, epoch) {
  return Number.isSafeInteger(offset) && offset >= 0 && typeof epoch === 'string';
}

// withRecovery attaches recovery to socket and returns the tracker.
function withRecovery(socket, options = {}) {
  const onRecovery = typeof options.onRecovery === 'function' ? options.onRecovery : () => {};
  const decode = typeof options.decode === 'function' ? options.decode : (message) => {
    if (typeof message !== 'string' || message.indexOf('"#publish"') < 0) return null;
    try {
      return JSON.parse(message);
    } catch (e) {
      return null;
    }
  };
  // channel name → the data object given to socket.subscribe (mutated).
  const tracked = new Map();

  const note = (name, offset, epoch) => {
    const data = tracked.get(name);
    if (data && validPosition(offset, epoch)) {
      data.recover = {offset, epoch};
    }
  };
  const notePacket = (packet) => {
    if (!isObject(packet) || packet.event !== '#publish' || !isObject(packet.data)) return;
    const {channel, offset, epoch} = packet.data;
    if (typeof channel === 'string') note(channel, offset, epoch);
  };

  const consumers = [];
  const consume = (stream, handle) => {
    const consumer = stream.createConsumer();
    consumers.push(consumer);
    (async () => {
      for (;;) {
        const {value, done} = await consumer.next();
        if (done) return;
        try {
          handle(value);
        } catch (e) {
          // A bad packet must not stop the tracking.
        }
      }
    })();
  };

  consume(socket.listener('message'), ({message}) => {
    const packet = decode(message);
    if (Array.isArray(packet)) packet.forEach(notePacket); // a batch
    else notePacket(packet);
  });
  consume(socket.receiver('sc.recovery'), (ev) => {
    if (!isObject(ev) || typeof ev.channel !== 'string') return;
    note(ev.channel, ev.offset, ev.epoch);
    if (tracked.has(ev.channel)) onRecovery(ev);
  });

  return {
    // subscribe is socket.subscribe for a channel to recover; from, when
    // given ({offset, epoch}, saved from an earlier session), is where the
    // first subscription recovers from. options.data, if any, must be an
    // object: the helper adds its `recover` member to it.
    subscribe(name, subscribeOptions = {}, from) {
      const opts = {...subscribeOptions};
      if (opts.data !== undefined && !isObject(opts.data)) {
        throw new TypeError('sc-recovery: the subscription data must be an object (it carries the recovery position)');
      }
      const data = opts.data || {};
      opts.data = data;
      tracked.set(name, data);
      if (from) {
        if (!validPosition(from.offset, from.epoch)) throw new TypeError('sc-recovery: from must be {offset, epoch}');
        data.recover = {offset: from.offset, epoch: from.epoch};
      }
      return socket.subscribe(name, opts);
    },
    // position returns the last position seen on a channel, or undefined.
    position(name) {
      const data = tracked.get(name);
      return data && data.recover ? {...data.recover} : undefined;
    },
    // forget stops tracking a channel (after unsubscribing it).
    forget(name) {
      tracked.delete(name);
    },
    // destroy stops the helper.
    destroy() {
      for (const c of consumers.splice(0)) c.return();
      tracked.clear();
    },
  };
}

module.exports = {withRecovery};
