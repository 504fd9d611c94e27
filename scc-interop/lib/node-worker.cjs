// A Node SCC worker as teams run them: socketcluster-server 20 with
// scc-broker-client 9.2.0 attached to its broker engine. Settings come
// from the environment (the names of the SocketCluster boilerplate).
// GET /scc-status answers {brokers, ready, channels, unconfirmed}:
// unconfirmed counts the local channels whose broker has not confirmed
// the subscription yet.
'use strict';
const http = require('http');
const crypto = require('crypto');
const socketClusterServer = require('socketcluster-server');
const sccBrokerClient = require('scc-broker-client');

const env = process.env;
const port = Number(env.SOCKETCLUSTER_PORT);
const httpServer = http.createServer();
const agServer = socketClusterServer.attach(httpServer);

const clusterClient = sccBrokerClient.attach(agServer.brokerEngine, {
  instanceId: crypto.randomUUID(),
  instancePort: port,
  instanceIp: env.SCC_INSTANCE_IP || undefined,
  instanceIpFamily: env.SCC_INSTANCE_IP_FAMILY || undefined,
  pubSubBatchDuration: env.SCC_PUB_SUB_BATCH_DURATION ? Number(env.SCC_PUB_SUB_BATCH_DURATION) : undefined,
  stateServerHost: env.SCC_STATE_SERVER_HOST,
  stateServerPort: Number(env.SCC_STATE_SERVER_PORT),
  mappingEngine: env.SCC_MAPPING_ENGINE || undefined,
  clientPoolSize: env.SCC_CLIENT_POOL_SIZE ? Number(env.SCC_CLIENT_POOL_SIZE) : undefined,
  authKey: env.SCC_AUTH_KEY || undefined,
  brokerRetryDelay: env.SCC_BROKER_RETRY_DELAY ? Number(env.SCC_BROKER_RETRY_DELAY) : undefined,
  stateServerReconnectRandomness: 200,
});

(async () => {
  for await (const {error} of clusterClient.listener('error')) {
    if (env.SCC_LOG_ERRORS) console.error('scc error:', error && error.message);
  }
})();

httpServer.on('request', (req, res) => {
  if (req.url !== '/scc-status') {
    res.writeHead(404);
    res.end();
    return;
  }
  const channels = agServer.brokerEngine.subscriptions();
  let unconfirmed = 0;
  for (const ch of channels) {
    const uri = clusterClient.mapChannelNameToBrokerURI(ch);
    const pool = clusterClient.sccBrokerClientPools[uri];
    if (!pool || !pool.isSubscribed(ch, false)) unconfirmed++;
  }
  res.writeHead(200, {'Content-Type': 'application/json'});
  res.end(JSON.stringify({brokers: clusterClient.sccBrokerURIList, ready: clusterClient.isReady, channels: channels.length, unconfirmed}));
});

httpServer.listen(port, () => {
  console.log(`listening on ${port}`);
});
