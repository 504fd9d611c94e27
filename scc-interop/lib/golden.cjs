// Prints the golden file of scc/mapping (npm run golden): channel → site
// mappings computed by scc-broker-client 9.2.0's own mappers and hasher,
// for the Go implementation to reproduce exactly. Sites are given as
// indexes in the case's site list (-1: none).
'use strict';
const Hasher = require('scc-broker-client/hasher');
const SimpleMapper = require('scc-broker-client/mappers/simple-mapper');
const SkeletonRendezvousMapper = require('scc-broker-client/mappers/skeleton-rendezvous-mapper');
const SkeletonRendezvousHasher = require('skeleton-rendezvous');

// A deterministic generator, so that the file is stable.
let seed = 12345;
function rand(n) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed % n;
}

const keys = ['', ' ', '0', '42', '-7', '+3', ' 12 ', '0x1f', '0X1F', '0o17', '0b101', '0x', '1e3', '1e400', '-1e400',
  'Infinity', '-Infinity', '+Infinity', 'NaN', '.5', '5.', '.', '1_000', '99999999999999999999', '4294967296',
  '2147483648', '-2147483649', '\u00a012\u2028', '12a', 'a12', 'é', 'ü-channel', '日本語', '😀', 'a😀b', '\ud7ff\ue000',
  'chat', 'news/sport', 'user:123', '0x' + 'f'.repeat(40), '1' + '0'.repeat(400), '5e-400', '00012', '0b', '0xg'];
const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:/. é😀';
const chars = Array.from(alphabet);
for (let i = 0; i < 2000; i++) {
  const len = 1 + rand(24);
  let s = '';
  for (let j = 0; j < len; j++) s += chars[rand(chars.length)];
  keys.push(s);
}
for (let i = 0; i < 200; i++) keys.push(String(rand(1000000)));
for (let i = 0; i < 200; i++) keys.push('channel-' + i);

function siteList(n, style) {
  const out = [];
  for (let i = 0; i < n; i++) {
    if (style === 0) out.push(`ws://[::ffff:10.0.${i >> 8}.${i & 255}]:8888`);
    else out.push(`ws://127.0.0.1:${9000 + ((i * 7919) % 1000)}`);
  }
  return out;
}

const hasher = new Hasher();
const hashToIndex = keys.map((k) => [k, [1, 2, 3, 7, 16].map((m) => hasher.hashToIndex(k, m))]);
const md5Index = keys.map((k) => [k, [1, 2, 3, 5, 16].map((m) => hasher.hashToIndex(hasher.hashToHex(k), m))]);

const cases = [];
for (const [n, style] of [[0, 0], [1, 0], [2, 0], [3, 1], [5, 0], [16, 1], [17, 0], [20, 1], [33, 0], [40, 1], [100, 0]]) {
  const sites = siteList(n, style);
  const skeleton = new SkeletonRendezvousMapper();
  skeleton.setSites(sites.concat(sites.slice(0, 2))); // duplicates are dropped
  const simple = new SimpleMapper();
  simple.setSites(sites);
  cases.push({
    sites,
    skeletonSites: skeleton.getSites(),
    skeleton: keys.map((k) => sites.indexOf(skeleton.findSite(k))),
    simple: keys.map((k) => sites.indexOf(simple.findSite(k))),
  });
}

const options = [];
for (const opts of [{fanout: 3, targetClusterSize: 4}, {fanout: 9, targetClusterSize: 2, minClusterSize: 1}, {targetClusterSize: 5, minClusterSize: 3}]) {
  const sites = siteList(37, 1);
  const h = new SkeletonRendezvousHasher(opts);
  h.setSites(sites);
  options.push({options: opts, sites, skeletonSites: h.getSites(), skeleton: keys.slice(0, 500).map((k) => sites.indexOf(h.findSite(k)))});
}

const levels = [];
for (let fanout = 2; fanout <= 9; fanout++) {
  const row = [];
  for (let c = 1; c <= 3000; c++) row.push(Math.ceil(Math.log(c) / Math.log(fanout)));
  levels.push(row);
}

process.stdout.write(JSON.stringify({keys, hashToIndex, md5Index, cases, options, levels}) + '\n');
