// An Express-like app as PM2 cluster files run it: plain `http`, an `app` whose `listen` is
// Express's (`http.createServer(app).listen(...arguments)`), its port only in its own code
// (`app.listen(process.env.PORT || 3000)`), nothing of corral's.  BOOT_DELAY: seconds before it
// listens; LISTEN_HOST: listen({ port, host }) instead; READY_MESSAGE=1: process.send('ready') once
// listening (PM2's wait_ready); RECORD=<file>: one JSON line per thing that happens (listening, and
// how it was asked to stop).
'use strict';
const http = require('http');
const fs = require('fs');

function record(what) {
  if (process.env.RECORD) {
    const line = { pid: process.pid, instance: process.env.NODE_APP_INSTANCE, what };
    fs.appendFileSync(process.env.RECORD, JSON.stringify(line) + '\n');
  }
}

function app(req, res) {
  const body = `pid=${process.pid} instance=${process.env.NODE_APP_INSTANCE}\n`;
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
app.listen = function listen(...args) {  // as Express's application.listen
  const server = http.createServer(this);
  return server.listen(...args);
};

function listening() {
  record(`listening ${this.address().port}`);
  if (process.env.READY_MESSAGE) process.send('ready');
}

setTimeout(() => {
  const port = process.env.PORT || 3000;
  const server = process.env.LISTEN_HOST
    ? app.listen({ port: Number(port), host: process.env.LISTEN_HOST }, function () { listening.call(this); })
    : app.listen(port, function () { listening.call(this); });
  const stop = (why) => {
    record(why);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('message', (message) => { if (message === 'shutdown') stop('shutdown'); });
}, parseFloat(process.env.BOOT_DELAY || '0') * 1000);
