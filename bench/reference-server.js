#!/usr/bin/env node
'use strict';
// The Node reference server for side-by-side benchmarks: socketcluster-server
// 20.x (the interop suite's devDependency), one process, no middleware (its
// fastest configuration), serving the `echo` procedure.
//   node bench/reference-server.js 127.0.0.1:0   → prints READY <port>
const http = require('http');
const path = require('path');
const scs = require(path.join(__dirname, '..', 'interop', 'node_modules', 'socketcluster-server'));

const [host, port] = (process.argv[2] || '127.0.0.1:0').split(':');
const httpServer = http.createServer();
const agServer = scs.attach(httpServer, {pingInterval: 8000, pingTimeout: 20000});

(async () => {
  for await (const {socket} of agServer.listener('connection')) {
    (async () => {
      for await (const req of socket.procedure('echo')) req.end(req.data);
    })();
  }
})();

httpServer.listen(Number(port), host, () => {
  process.stdout.write(`READY ${httpServer.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
