// Node http app for bench/reload.py under PM2 cluster mode: boots in BOOT_DELAY seconds
// (default 1) before it listens on PORT; on SIGINT (PM2's stop signal) it stops accepting,
// lets requests in flight finish and exits (PM2's recommended graceful shutdown).
'use strict';
const http = require('http');
const delay = parseFloat(process.env.BOOT_DELAY || '1') * 1000;
const body = `pid=${process.pid}\n`;
setTimeout(() => {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.listen(parseInt(process.env.PORT, 10), '127.0.0.1');
  process.on('SIGINT', () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}, delay);
