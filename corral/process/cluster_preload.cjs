'use strict';
// corral's preload for Node apps in PM2's cluster mode: corral runs `node -r <this file> app.js`.
//
// server.listen(port) (or listen({port}), any host) does not bind the port itself: it listens on
// the socket corral holds for this instance's slot, one SO_REUSEPORT socket per slot, so every
// instance serves the same port and a replacement takes over its slot's socket without a refused
// connection.  The slot's sockets corral holds already are inherited, "FD=ADDRESS ..." in
// CORRAL_NODE_LISTEN (the app's declared `listen` addresses, matched by port) and
// CORRAL_NODE_INFERRED (ports this slot listened on before, matched by host and port).  For any
// other port the preload asks corral on Node's IPC channel (NODE_CHANNEL_FD), which binds the
// slot's socket (only corral binds: the app may run as another user) and sends it back as a
// handle, or the errno the app's own bind would have got.  The first server that starts
// listening is reported to corral: that instance is ready, as PM2 reads its 'listening' event.
//
// Processes the app starts with this file in their execArgv (cluster.fork, child_process.fork)
// load it too and do nothing: the variables are gone from their environment.
(function corralClusterPreload() {
  const env = process.env;
  const enabled = env.CORRAL_NODE_CLUSTER === '1';
  const declared = parse(env.CORRAL_NODE_LISTEN);
  const inferred = parse(env.CORRAL_NODE_INFERRED);
  delete env.CORRAL_NODE_CLUSTER;
  delete env.CORRAL_NODE_LISTEN;
  delete env.CORRAL_NODE_INFERRED;
  if (!enabled || typeof process.send !== 'function' || 'NODE_UNIQUE_ID' in env) {
    return;
  }

  const net = require('net');
  const dns = require('dns');
  const path = require('path');
  const util = require('util');
  const ETIMEDOUT = -require('os').constants.errno.ETIMEDOUT;
  const TIMEOUT_MS = 10000;
  const original = net.Server.prototype.listen;
  const pending = new Map();
  let nextId = 1;
  let reported = false;

  function parse(text) {
    const out = [];
    for (const item of (text || '').split(' ')) {
      const eq = item.indexOf('=');
      const fd = Number(item.slice(0, eq));
      const address = item.slice(eq + 1);
      const tcp = /^tcp:\/\/(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(address);
      if (eq < 1 || !Number.isInteger(fd)) {
        continue;
      } else if (address.startsWith('unix:')) {
        out.push({ fd, path: address.slice(5), used: false });
      } else if (tcp) {
        out.push({ fd, host: tcp[1] || tcp[2], port: Number(tcp[3]), used: false });
      }
    }
    return out;
  }

  function report() {
    if (!reported) {
      reported = true;
      process.send({ cmd: 'NODE_CORRAL_LISTENING' }, () => {});
    }
  }

  function wantedPort(options) {
    if (options === null || typeof options !== 'object' || options.port === undefined || options.port === null ||
        (options.fd !== undefined && options.fd !== null) || options.handle || options._handle || options.path) {
      return null;
    }
    const port = Number(options.port);
    return Number.isInteger(port) && port > 0 && port <= 65535 ? port : null;  // 0: a port of its own
  }

  function sameHost(held, ip) {
    return held === ip || (ip === '' && (held === '::' || held === '0.0.0.0'));
  }

  function inheritedFor(port, ip) {
    return declared.find((e) => !e.used && e.port === port) ||
      inferred.find((e) => !e.used && e.port === port && sameHost(e.host, ip));
  }

  function tail(backlog, cb) {
    const out = [];
    if (backlog) out.push(backlog);
    if (cb) out.push(cb);
    return out;
  }

  function listenError(errno, address, port) {
    let code = `E${-errno}`;
    let text = 'unknown error';
    try {
      const known = util.getSystemErrorMap().get(errno);
      if (known) [code, text] = known;
    } catch (e) { /* an older Node: the number alone */ }
    const err = new Error(`listen ${code}: ${text} ${address}:${port}`);
    // the app's error, as Node's own listen would report it: no frame of this file in its stack
    err.stack = err.stack.split('\n').filter((line) => !line.includes(__filename)).join('\n');
    return Object.assign(err, { code, errno, syscall: 'listen', address, port });
  }

  function ask(server, args, port, ip, backlog, cb) {
    const id = nextId++;
    let closed = false;
    const onClose = () => { closed = true; };
    const keep = setInterval(() => {}, 1 << 30);  // the app stays up while corral answers
    const timer = setTimeout(() => done(null, ETIMEDOUT, ip || '::'), TIMEOUT_MS);
    function done(handle, errno, address) {
      pending.delete(id);
      clearTimeout(timer);
      clearInterval(keep);
      server.removeListener('close', onClose);
      if (closed) {
        if (handle) handle.close();
      } else if (handle) {
        original.call(server, handle, ...tail(backlog, cb));
      } else if (errno === null) {
        original.apply(server, args);  // no channel any more: the app binds the port itself
      } else {
        // emitted from Node's own tick queue, as its listen errors are: its report names no frame of ours
        process.nextTick(server.emit.bind(server, 'error', listenError(errno, address, port)));
      }
    }
    pending.set(id, done);
    server.once('close', onClose);
    process.send({ cmd: 'NODE_CORRAL_LISTEN', id, port, host: ip || null }, (err) => {
      if (err && pending.has(id)) done(null, null);
    });
  }

  function listenOn(server, args, port, ip, backlog, cb) {
    const held = inheritedFor(port, ip);
    if (held) {
      held.used = true;  // its fd is the server's now (closed with it): asked for again next time
      original.call(server, { fd: held.fd }, ...tail(backlog, cb));
    } else {
      ask(server, args, port, ip, backlog, cb);
    }
  }

  process.on('internalMessage', (message, handle) => {
    if (!message || message.cmd !== 'NODE_CORRAL_SOCKET') return;
    const done = pending.get(message.id);
    if (!done) {
      if (handle) handle.close();
    } else if (handle) {
      done(handle, 0);
    } else {
      done(null, message.errno || -22, message.address || '::');
    }
  });

  net.Server.prototype.listen = function listen(...args) {
    const normalized = net._normalizeArgs(args);
    const options = normalized[0];
    const cb = normalized[1];
    this.once('listening', report);
    const port = wantedPort(options);
    if (port === null) {
      const unix = typeof options.path === 'string' && !options.fd && !options.handle && !options._handle &&
        declared.find((e) => !e.used && e.path === path.resolve(options.path));
      if (!unix) return original.apply(this, args);
      unix.used = true;
      return original.call(this, { fd: unix.fd }, ...tail(options.backlog, cb));
    }
    const backlog = options.backlog || (typeof args[1] === 'number' ? args[1] : undefined) ||
      (typeof args[2] === 'number' ? args[2] : undefined);
    const host = options.host === undefined || options.host === null ? '' : String(options.host);
    if (host === '' || net.isIP(host)) {
      listenOn(this, args, port, host, backlog, cb);
    } else {
      dns.lookup(host, (err, ip) => {  // as Node's own listen(port, hostname)
        if (err) this.emit('error', err);
        else listenOn(this, args, port, ip, backlog, cb);
      });
    }
    return this;
  };
})();
