// A socketcluster-server 20.x (the Node reference) for TestReference in
// reference_test.go. Run with NODE_PATH pointing at interop/node_modules;
// it prints its port on stdout.
'use strict';
const http = require('http');
const socketClusterServer = require('socketcluster-server');

const httpServer = http.createServer();
const agServer = socketClusterServer.attach(httpServer, {
  authKey: 'secret',
  pingInterval: 200,
  pingTimeout: 1000,
});

function serve(socket, name, fn) {
  (async () => {
    for await (const req of socket.procedure(name)) {
      try {
        await fn(req);
      } catch (err) {
        if (!req.sent) req.error(err);
      }
    }
  })();
}

(async () => {
  for await (const {socket} of agServer.listener('connection')) {
    serve(socket, 'echo', (req) => req.end(req.data));
    serve(socket, 'undef', (req) => req.end());
    serve(socket, 'null', (req) => req.end(null));
    serve(socket, 'fail', (req) => {
      const e = new Error('it failed');
      e.name = 'FailError';
      e.extra = {a: 1};
      req.error(e);
    });
    serve(socket, 'login', async (req) => {
      await socket.setAuthToken({username: req.data});
      req.end('ok');
    });
    serve(socket, 'loginConfirmed', async (req) => {
      await socket.setAuthToken({username: req.data}, {rejectOnFailedDelivery: true});
      req.end('confirmed');
    });
    serve(socket, 'whoami', (req) => req.end(socket.authToken ? socket.authToken.username : null));
    serve(socket, 'kick', (req) => {
      req.end();
      socket.kickOut(req.data, 'bye');
    });
    serve(socket, 'drop', (req) => {
      req.end();
      setTimeout(() => socket.disconnect(req.data), 10);
    });
    serve(socket, 'callme', async (req) => req.end(await socket.invoke('double', req.data)));
    serve(socket, 'callfail', async (req) => {
      try {
        await socket.invoke('nope', req.data);
        req.end('unexpected');
      } catch (err) {
        req.end({name: err.name, message: err.message, custom: err.custom});
      }
    });
    serve(socket, 'publish', async (req) => {
      await agServer.exchange.invokePublish(req.data.channel, req.data.data);
      req.end();
    });
    (async () => {
      for await (const data of socket.receiver('tx')) socket.transmit('back', data);
    })();
  }
})();

httpServer.listen(0, '127.0.0.1', () => console.log(httpServer.address().port));
