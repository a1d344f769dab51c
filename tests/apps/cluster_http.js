// An Express-like app as PM2 cluster files run it: plain `http`, its port only in its own code
// (`process.env.PORT || 3000`), nothing of corral's.  BOOT_DELAY: seconds before it listens;
// READY_MESSAGE=1: process.send('ready') once listening (PM2's wait_ready); RECORD=<file>: one
// JSON line per thing that happens (listening, and how it was asked to stop).
'use strict';
const http = require('http');
const fs = require('fs');

function record(what) {
  if (process.env.RECORD) {
    const line = { pid: process.pid, instance: process.env.NODE_APP_INSTANCE, what };
    fs.appendFileSync(process.env.RECORD, JSON.stringify(line) + '\n');
  }
}

const app = (req, res) => {
  const body = `pid=${process.pid} instance=${process.env.NODE_APP_INSTANCE}\n`;
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
};

const port = process.env.PORT || 3000;
setTimeout(() => {
  const server = http.createServer(app);
  server.listen(port, () => {
    record(`listening ${server.address().port}`);
    if (process.env.READY_MESSAGE) process.send('ready');
  });
  const stop = (why) => {
    record(why);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('message', (message) => { if (message === 'shutdown') stop('shutdown'); });
}, parseFloat(process.env.BOOT_DELAY || '0') * 1000);
