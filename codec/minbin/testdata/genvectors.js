// Generates vectors.json with the real sc-codec-min-bin. The Go tests only
// read the JSON; node is needed only to regenerate it:
//
//   mkdir -p /tmp/minbin && cd /tmp/minbin && npm install sc-codec-min-bin@3.0.0
//   NODE_PATH=/tmp/minbin/node_modules node genvectors.js > vectors.json
//
// Value notation shared with the Go test (vectors_test.go):
//   JSON null/bool/string/number as themselves; arrays as JSON arrays;
//   {"$obj": {...}} an object (undefined-valued properties left out);
//   {"$bin": "hex"} binary (ArrayBuffer / []byte);
//   {"$num": "NaN" | "Infinity" | "-Infinity" | "-0"};
//   {"$str": [unit, count]}, {"$binfill": [byte, count]},
//   {"$arrfill": [value, count]}, {"$mapfill": count} (keys k0.., values
//   0..) for large values.
'use strict';
const crypto = require('crypto');
const c = require('sc-codec-min-bin');
const version = require('sc-codec-min-bin/package.json').version;
const mlVersion = require('msgpack-lite/package.json').version;

const hex = (b) => Buffer.from(b).toString('hex');
const ab = (bytes) => new Uint8Array(bytes).buffer;

function isIndex(k) { return /^(0|[1-9][0-9]{0,9})$/.test(k) && Number(k) < 4294967295; }
function keyCmp(a, b) {
  const ai = isIndex(a), bi = isIndex(b);
  if (ai && bi) return Number(a) - Number(b);
  if (ai) return -1;
  if (bi) return 1;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

// canon rebuilds plain objects with their keys inserted in the order the Go
// encoder writes them (array indexes, then byte order).
function canon(v) {
  if (Array.isArray(v)) return v.map(canon);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const o = {};
    for (const k of Object.keys(v).sort(keyCmp)) o[k] = canon(v[k]);
    return o;
  }
  return v;
}

function tag(v) {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return { $num: 'NaN' };
    if (v === Infinity) return { $num: 'Infinity' };
    if (v === -Infinity) return { $num: '-Infinity' };
    if (Object.is(v, -0)) return { $num: '-0' };
    return v;
  }
  if (v instanceof ArrayBuffer) return { $bin: hex(new Uint8Array(v)) };
  if (Array.isArray(v)) return v.map((e) => (e === undefined ? null : tag(e)));
  if (typeof v === 'object') {
    if (v.constructor && v.constructor.name === 'ExtBuffer') {
      return { $obj: { buffer: { $bin: hex(v.buffer) }, type: v.type } };
    }
    const o = {};
    for (const k of Object.keys(v)) if (v[k] !== undefined) o[k] = tag(v[k]);
    return { $obj: o };
  }
  throw new Error('cannot tag ' + typeof v);
}

function decodeResult(input) {
  try {
    return { decoded: tag(c.decode(input)) };
  } catch (err) {
    return { decodeError: { name: err.constructor.name, message: err.message } };
  }
}

const encode = [];
const decode = [];

// Encode vectors: a value the Go tree can express, what the npm codec
// encodes it to, and what it decodes that back to.
function enc(name, value, big) {
  value = canon(value);
  const input = big ? big.input : tag(value);
  const out = c.encode(value); // may mutate value (batches)
  const vec = { name, input };
  if (out.length > 512) {
    vec.len = out.length;
    vec.sha256 = crypto.createHash('sha256').update(out).digest('hex');
    vec.prefix = hex(out.subarray(0, 16));
    const r = decodeResult(out);
    if (r.decodeError) vec.decodeError = r.decodeError;
    else if (require('util').isDeepStrictEqual(r.decoded, tag(canon(big.value())))) vec.decodedIsInput = true;
    else throw new Error(name + ': big vector does not decode to its input');
  } else {
    vec.hex = hex(out);
    Object.assign(vec, decodeResult(out));
  }
  encode.push(vec);
}

// Decode vectors: bytes (or text) the Go decoder must read as the npm one.
function decHex(name, h, note) {
  decode.push(Object.assign({ name, hex: h }, note ? { note } : {}, decodeResult(Buffer.from(h, 'hex'))));
}
function decValue(name, jsValue, note) {
  decHex(name, hex(c.encode(jsValue)), note);
}
function decText(name, text) {
  decode.push(Object.assign({ name, text }, decodeResult(text)));
}

// --- packets as the official client and the reference server send them ---
enc('client handshake', { event: '#handshake', data: { authToken: null }, cid: 1 });
enc('client handshake with token', { event: '#handshake', data: { authToken: 'a.b.c' }, cid: 9 });
enc('handshake response', { rid: 1, data: { id: 'abc', pingTimeout: 20000, isAuthenticated: false } });
enc('handshake response with authError', { rid: 1, data: { id: 'abc', pingTimeout: 20000, isAuthenticated: false, authError: { name: 'AuthTokenInvalidError', message: 'invalid signature' } } });
enc('subscribe', { event: '#subscribe', data: { channel: 'ch' }, cid: 2 });
enc('subscribe with options', { event: '#subscribe', data: { channel: 'ch', data: { x: 1 } }, cid: 2 });
enc('unsubscribe transmit', { event: '#unsubscribe', data: 'ch' });
enc('transmit without data', { event: 't3' });
enc('transmit with null data', { event: 't', data: null });
enc('invoke', { event: 'inv', data: { a: 1 }, cid: 3 });
enc('kickOut', { event: '#kickOut', data: { message: 'bye', channel: 'ch' } });
enc('setAuthToken', { event: '#setAuthToken', data: { token: 'x.y.z' } });
enc('removeAuthToken', { event: '#removeAuthToken' });
enc('server invoke', { event: 'clientProc', cid: 1, data: { q: 1 } });
enc('publish transmit', { event: '#publish', data: { channel: 'ch', data: 'y' } });
enc('publish invoke', { event: '#publish', data: { channel: 'ch', data: 'x' }, cid: 4 });
enc('publish binary', { event: '#publish', data: { channel: 'ch', data: ab([7, 8]) } });
enc('publish object', { event: '#publish', data: { channel: 'chat/room1', data: { user: 'ann', text: 'hello world', ts: 1700000000000 } } });
enc('publish without inner data', { event: '#publish', data: { channel: 'a' } });
enc('publish inner data null', { event: '#publish', data: { channel: 'a', data: null } });
enc('publish extra inner keys dropped', { event: '#publish', data: { channel: 'a', data: 1, z: 2 } });
enc('publish null data uses e', { event: '#publish', data: null, cid: 4 });
enc('publish without data uses e', { event: '#publish' });
enc('publish string data', { event: '#publish', data: 'zz' });
enc('publish array data', { event: '#publish', data: ['a', 'b'] });
enc('publish cid null', { event: '#publish', data: { channel: 'a', data: 1 }, cid: null });
enc('publish event loosely equal', { event: ['#publish'], data: { channel: 'a', data: 1 } });
enc('response empty', { rid: 3 });
enc('response null', { rid: 3, data: null });
enc('response data', { rid: 3, data: { name: 'Ann' } });
enc('response error', { rid: 4, error: { message: 'it failed', name: 'FailError', extra: { a: 1 } } });
enc('response string error', { rid: 4, error: 'just a string' });
enc('response fractional rid', { rid: 15.5, data: -1 });
enc('response negative rid', { rid: -1 });
enc('response string rid', { rid: 'x', data: 1 });
enc('response error and data', { rid: 5, error: 'e', data: 'd' });
enc('event and rid', { event: 'x', data: 1, rid: 2, cid: 5 });
enc('rid with cid', { rid: 1, cid: 2 });
enc('null event with rid', { event: null, rid: 3 });
enc('null rid with event', { event: 'x', rid: null });
enc('extra keys kept', { event: 'x', data: 1, foo: 2 });
enc('extra index keys kept', { event: 'x', 0: 'a', zz: 1 });
enc('existing e key overwritten', { event: 'x', e: 5, a: 1 });
enc('existing p key kept', { event: 'x', p: 1 });
enc('existing r key overwritten', { rid: 1, r: 'old', a: 0 });
enc('numeric event', { event: 5, data: 1 });
enc('string cid', { event: 'x', data: 1, cid: '14' });
enc('event empty string', { event: '', data: 1 });

// --- values that are not packets ---
enc('top string', 'hello');
enc('top number', 5);
enc('top null', null);
enc('top true', true);
enc('top false', false);
enc('top empty string', '');
enc('top zero', 0);
enc('top plain object', { foo: 1 });
enc('top object with null event', { event: null, data: 1 });
enc('top binary', ab([1, 2, 3]));
enc('top empty array', []);

// --- batches ---
enc('batch of packets', [{ event: 'a', data: 1 }, { event: 'b', data: 2 }, { rid: 2, data: 'x' }, { rid: 3, data: 'x' }]);
enc('batch of subscribes', [{ event: '#subscribe', data: { channel: 'ch0' }, cid: 2 }, { event: '#subscribe', data: { channel: 'ch1' }, cid: 3 }]);
enc('batch with publish', [{ event: '#publish', data: { channel: 'c', data: 1 } }, { rid: 1 }]);
enc('batch of non-packets', ['ab', null, 5, [1, 2], { foo: 1 }, true, ab([1]), 'é😀', [], '', [null]]);
enc('batch nested array elements', [[{ event: 'x' }, [1]]]);

// --- numbers as msgpack-lite writes them ---
enc('numbers', { event: 'n', data: [0, 1, 127, 128, 255, 256, 65535, 65536, 2147483647, 2147483648, 4294967295, 4294967296, -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, 1.5, -1.5, 0.1, 1e21, 1e-7, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 2 ** 64, Number.MAX_VALUE, Number.MIN_VALUE, 5e-324] });
enc('special numbers', { event: 'n', data: [NaN, Infinity, -Infinity, -0] });

// --- strings ---
enc('strings', { event: 's', data: ['', 'a', 'é', '€', '😀', 'a'.repeat(31), 'a'.repeat(32), 'é'.repeat(15), 'é'.repeat(16), 'a'.repeat(255), '\u0000', 'line\nbreak', '\uFFFD'] });
enc('str 256', { event: 's', data: 'b'.repeat(256) });
enc('str 65535', { event: 's', data: 'c'.repeat(65535) }, { input: { $obj: { event: 's', data: { $str: ['c', 65535] } } }, value: () => ({ event: 's', data: 'c'.repeat(65535) }) });
enc('str 65536', { event: 's', data: 'd'.repeat(65536) }, { input: { $obj: { event: 's', data: { $str: ['d', 65536] } } }, value: () => ({ event: 's', data: 'd'.repeat(65536) }) });
enc('str multibyte 70000', { event: 's', data: '€'.repeat(70000) }, { input: { $obj: { event: 's', data: { $str: ['€', 70000] } } }, value: () => ({ event: 's', data: '€'.repeat(70000) }) });
enc('unicode keys', { event: 'u', data: { 'é': 1, 'z': 2, '€': 3 } });

// --- binary ---
for (const n of [0, 1, 254]) enc('bin ' + n, { event: 'b', data: ab(new Array(n).fill(0xab)) });
for (const n of [255, 256, 65535, 65536]) {
  enc('bin ' + n, { event: 'b', data: ab(new Array(n).fill(0xcd)) }, { input: { $obj: { event: 'b', data: { $binfill: [0xcd, n] } } }, value: () => ({ event: 'b', data: ab(new Array(n).fill(0xcd)) }) });
}
enc('nested binary', { rid: 1, data: { files: [ab([1]), { raw: ab([]) }] } });

// --- containers ---
enc('array 15', { event: 'a', data: new Array(15).fill(1) });
enc('array 16', { event: 'a', data: new Array(16).fill(1) });
enc('array 65536', { event: 'a', data: new Array(65536).fill(0) }, { input: { $obj: { event: 'a', data: { $arrfill: [0, 65536] } } }, value: () => ({ event: 'a', data: new Array(65536).fill(0) }) });
const mapN = (n) => { const o = {}; for (let i = 0; i < n; i++) o['k' + i] = i; return o; };
enc('map 15', { event: 'm', data: mapN(15) });
enc('map 16', { event: 'm', data: mapN(16) }, { input: { $obj: { event: 'm', data: { $mapfill: 16 } } }, value: () => ({ event: 'm', data: mapN(16) }) });
enc('map 65536', { event: 'm', data: mapN(65536) }, { input: { $obj: { event: 'm', data: { $mapfill: 65536 } } }, value: () => ({ event: 'm', data: mapN(65536) }) });
enc('key order', { event: 'k', data: { b: 1, 2: 2, a: 3, 1: 4, '10': 5, '01': 6, '4294967295': 7, '4294967294': 8, '': 9 } });
enc('nested', { event: 'deep', data: { a: [1, { b: [2, [3, { c: null }]] }], d: { e: { f: true } } } });

// --- decode only: what JavaScript values the Go tree has no name for turn into ---
decValue('client Buffer is an index map', { event: 't1', data: Buffer.from([1, 2]) }, 'a Node Buffer encodes as {"0":1,"1":2}');
decValue('Uint8Array is an index map', { event: 't', data: new Uint8Array([3, 4, 5]) });
decValue('DataView is an empty map', { event: 't', data: new DataView(ab([1, 2])) });
decValue('Date is an empty map', { event: 't', data: new Date(0) });
decValue('Map is an empty map', { event: 't', data: new Map([['a', 1]]) });
decValue('function symbol undefined are nil', { event: 't', data: { f() {}, s: Symbol('q'), u: undefined } });
decValue('undefined in array is nil', { event: 't', data: [undefined, 1] });

// --- decode only: MessagePack the encoder never writes ---
decHex('uint8 small', 'cc05');
decHex('uint16 small', 'cd0005');
decHex('uint32', 'ceffffffff');
decHex('uint64', 'cf0000000100000000');
decHex('uint64 max', 'cfffffffffffffffff');
decHex('uint64 2^53+1', 'cf0020000000000001');
decHex('int8', 'd0ff');
decHex('int16', 'd18000');
decHex('int32', 'd280000000');
decHex('int64 -1', 'd3ffffffffffffffff');
decHex('int64 min', 'd38000000000000000');
decHex('int64 -2^53-1', 'd3ffdfffffffffffff');
decHex('float32', 'ca3fc00000');
decHex('float32 nan', 'ca7fc00000');
decHex('float64 -0', 'cb8000000000000000');
decHex('str8 short', 'd903616263');
decHex('str16 short', 'da0003616263');
decHex('str32', 'db00000003616263');
decHex('bin8', 'c4020908');
decHex('bin16', 'c500020908');
decHex('bin32', 'c6000000020908');
decHex('bin8 empty', 'c400');
decHex('array16', 'dc00020102');
decHex('array32', 'dd000000020102');
decHex('map16', 'de0001a16101');
decHex('map32', 'df00000001a16101');
decHex('fixext1', 'd40509');
decHex('fixext2', 'd5050102');
decHex('fixext4', 'd605' + '01020304');
decHex('fixext8', 'd705' + '0102030405060708');
decHex('fixext16', 'd805' + '0102030405060708090a0b0c0d0e0f10');
decHex('ext8', 'c703ff010203');
decHex('ext16 empty', 'c8000080');
decHex('ext32', 'c90000000101ff');
decHex('ext in packet', '81a16592a178d40509');
decHex('trailing bytes ignored', '0102');
decHex('trailing garbage ignored', '81a16592a17801c1c1');

// --- decode only: errors ---
decHex('empty', '');
decHex('nil', 'c0');
decHex('never used', 'c1');
decHex('never used nested', '92' + '01c1');
decHex('truncated array', '9201');
decHex('truncated str', 'a3616263'.slice(0, 6));
decHex('truncated float', 'cb0000');
decHex('truncated ext', 'd705010203');
decHex('truncated str8 header', 'd9');
decHex('huge array then shortage', 'ddffffffff01');
decHex('huge array then invalid', 'ddffffffffc1');
decHex('huge map then shortage', 'dfffffffffa16101');
decHex('huge str', 'dbffffffff61');
decHex('batch with nil', '9281a16592a16101c0');
decHex('batch of nils', '91c0');
decHex('top array with scalars', '9201a161');
decHex('empty batch', '90');
decHex('nested nil is fine', '81a16592a178c0');

// --- decode only: decompression of odd shapes ---
decValue('e string', { e: 'xyz' });
decValue('e astral string', { e: '😀a' });
decValue('e number', { e: 5 });
decValue('e true', { e: true });
decValue('e empty string', { e: '' });
decValue('e zero', { e: 0 });
decValue('e null stays', { e: null, x: 1 });
decValue('e binary', { e: ab([1, 2, 3]) });
decValue('e one element', { e: ['ev'] });
decValue('e empty', { e: [] });
decValue('e null cid keeps cid', { e: ['a', 1, null], cid: 9 });
decValue('e short keeps cid', { e: ['a'], cid: 9, data: 4 });
decValue('e overrides event', { e: ['a', 1, 2], event: 'z', data: 'z', cid: 'z' });
decValue('e map', { e: { 0: 'a', 1: 'b', 2: 3 } });
decValue('e and p', { e: ['a', 1, 2], p: ['ch', 'd'] });
decValue('e and r', { e: ['a', 1, 2], r: [5, null, 'x'] });
decValue('p one element', { p: ['ch'] });
decValue('p empty', { p: [] });
decValue('p string', { p: 'ab' });
decValue('p with extra', { p: ['ch', 'd', 7, 8], z: 1 });
decValue('p null stays', { p: null });
decValue('r one element', { r: [7] });
decValue('r empty', { r: [] });
decValue('r number', { r: 1 });
decValue('r full', { r: [1, { message: 'm' }, 2] });
decValue('r with extra keys', { r: [1, null, 2], x: 'y' });
decValue('batch of compacted', [{ e: ['a', 1] }, { p: ['c', 2, 3] }, { r: [4] }, 'raw', 7]);
decValue('long packet ids', { e: ['x', 1, 2147483648] });

// --- decode only: map keys that are not strings ---
decHex('int key', '8101' + '02');
decHex('negative key', '81ff02');
decHex('float key', '81cb3ff8000000000000' + '02');
decHex('big float key', '81cb4415af1d78b58c40' + '02');
decHex('small float key', '81cb3e7ad7f29abcaf48' + '02');
decHex('1e21 key', '81cb444b1ae4d6e2ef50' + '02');
decHex('nan key', '81cb7ff8000000000000' + '02');
decHex('inf key', '81cb7ff0000000000000' + '02');
decHex('nil key', '81c002');
decHex('true key', '81c302');
decHex('false key', '81c202');
decHex('bin key', '81c4016102');
decHex('array key', '819301' + '920203' + 'c0' + '02');
decHex('nested array key', '81' + '92' + '90' + '91c0' + '02');
decHex('map key', '8180' + '02');
decHex('ext key', '81d40509' + '02');
decHex('duplicate keys last wins', '82a16101a16102');
decHex('int and string key collide', '8201' + '01' + 'a131' + '02');
decHex('__proto__ object dropped', '82a95f5f70726f746f5f5f81a16101a16202');
decHex('__proto__ scalar dropped', '82a95f5f70726f746f5f5f01a16202');
decHex('__proto__ from array key dropped', '82' + '91a95f5f70726f746f5f5f' + '01' + 'a16202');
decHex('e key', '81a165' + '92a17801');

// --- decode only: strings the way msgpack-lite's own UTF-8 reader sees them ---
const fixstr = (h, tail) => { const b = Buffer.from(h, 'hex'); return Buffer.concat([Buffer.from([0xa0 + b.length]), b, Buffer.from(tail || '', 'hex')]).toString('hex'); };
decHex('utf8 valid', fixstr('c3a9e282acf09f9880'));
decHex('utf8 truncated 3-byte reads next byte', '92' + fixstr('e282') + '41');
decHex('utf8 truncated at end of frame', fixstr('e282'));
decHex('utf8 truncated 4-byte at end', fixstr('f0'));
decHex('utf8 surrogate', fixstr('eda080'));
decHex('utf8 cesu pair', fixstr('eda0bdedb880'));
decHex('utf8 low surrogate then high', fixstr('edb080eda080'));
decHex('utf8 overlong', fixstr('c0af'));
decHex('utf8 overlong 3', fixstr('e080af'));
decHex('utf8 stray continuation', fixstr('80bf'));
decHex('utf8 ff', fixstr('ff'));
decHex('utf8 f8', fixstr('f8'));
decHex('utf8 above 10ffff', fixstr('f4908080'));
decHex('utf8 f7bfbfbf', fixstr('f7bfbfbf'));
decHex('utf8 bad continuation', fixstr('c341'));
decHex('utf8 in key', '81' + fixstr('e282') + '01');
decHex('utf8 key reads into value', '81' + fixstr('e2') + 'a2' + '4142');

// --- decode only: text frames ---
for (const t of ['', '{"event":"x"}', '3', ' 12 ', '-1', '-1.5', '-1.50', ' -1', 'Infinity', '-Infinity', '+Infinity', 'infinity', '0x10', '0X1f', '0xg', '0b11', '0o7', '0b2', '4294967296', '4294967296.9', '4294967297', '9007199254740993', '1e300', '1E300', '1e400', '-0', '-0.5', '-0.9999', '-0x1', '0x100000001', 'NaN', 'abc', '\u00a02\ufeff', '\u20282\u3000', '\u200b2', '1_0', '.5', '5.', '.', '+3', '++3', '1e3', '1e', '1e+2', '3 4', '\n', '\t7\r\n', '0x', '00012', '1.5e1']) {
  decText('text ' + JSON.stringify(t), t);
}

// --- decode only: nesting ---
const nest = (d) => '91'.repeat(d) + '01';
decHex('nested 100', nest(100));
decHex('nested 5000', nest(5000));

const doc = {
  generator: `sc-codec-min-bin ${version} with msgpack-lite ${mlVersion}, node ${process.version}`,
  encode,
  decode,
};
process.stdout.write(JSON.stringify(doc, null, 1) + '\n');
