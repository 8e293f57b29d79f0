'use strict';
// Runs a peer script in N processes sharing its port: `node cluster.js N script.js`. With N = 1 the script runs in this
// process (no cluster primary); with more, Node's cluster module forks N workers (the primary hands out connections).
const cluster = require('cluster');
const path = require('path');

const n = Number(process.argv[2]);
const script = path.resolve(__dirname, process.argv[3] || '');
if (!(n >= 1) || !process.argv[3]) {
  console.error('usage: node cluster.js N script.js');
  process.exit(2);
}

if (n === 1 || !cluster.isPrimary) {
  require(script);
} else {
  for (let i = 0; i < n; ++i) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    console.error(`cluster: worker ${worker.process.pid} exited (${signal || code}); stopping`);
    process.exit(1);
  });
  const stop = () => {
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
