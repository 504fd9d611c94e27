// Our mapper (bin/scc-broker -map) against scc-broker-client 9.2.0's own
// mappers and pool hash, on a few thousand channel names.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import path from 'node:path';
import {createRequire} from 'node:module';
import {bin} from '../lib/cluster.mjs';

const require = createRequire(import.meta.url);
const SkeletonRendezvousMapper = require('scc-broker-client/mappers/skeleton-rendezvous-mapper');
const SimpleMapper = require('scc-broker-client/mappers/simple-mapper');
const Hasher = require('scc-broker-client/hasher');

function names() {
  const out = ['', '0', '123', ' 42 ', '0x1f', '1e3', 'Infinity', 'é', '😀', 'user:1', 'a/b/c'];
  let seed = 7;
  const alphabet = Array.from('abcdefghijklmnopqrstuvwxyz0123456789-_:/.éü日😀 ');
  for (let i = 0; i < 3000; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    let s = '';
    const len = 1 + (seed % 20);
    for (let j = 0; j < len; j++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      s += alphabet[seed % alphabet.length];
    }
    out.push(i % 7 === 0 ? String(seed % 100000) : s);
  }
  return out;
}

for (const [engine, Mapper] of [['skeletonRendezvous', SkeletonRendezvousMapper], ['simple', SimpleMapper]]) {
  for (const n of [1, 2, 3, 7, 20]) {
    test(`${engine} mapping of 3000 channels over ${n} brokers agrees with scc-broker-client`, () => {
      const sites = Array.from({length: n}, (_, i) => `ws://[::ffff:127.0.0.1]:${8000 + i * 37}`);
      const mapper = new Mapper();
      mapper.setSites(sites);
      const hasher = new Hasher();
      const list = names();
      const out = execFileSync(path.join(bin, 'scc-broker'), ['-map', '-mapping-engine', engine, '-sites', sites.join(','), '-pool-size', '3'], {
        input: list.map((s) => JSON.stringify(s)).join('\n') + '\n',
        maxBuffer: 1 << 26,
      }).toString().trimEnd().split('\n');
      assert.equal(out.length, list.length);
      let spread = new Set();
      list.forEach((name, i) => {
        const [site, pool] = out[i].split('\t');
        assert.equal(site, mapper.findSite(name), `channel ${JSON.stringify(name)}`);
        assert.equal(Number(pool), hasher.hashToIndex(name, 3), `pool index of ${JSON.stringify(name)}`);
        spread.add(site);
      });
      assert.equal(spread.size, n, 'every broker gets channels');
    });
  }
}
