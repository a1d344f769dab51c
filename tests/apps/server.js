// A Node http server on the socket corral hands over (fd 3), as in server.listen({fd: 3}).
const http = require("http");
const server = http.createServer((req, res) => {
  const body = `pid=${process.pid} instance=${process.env.CORRAL_INSTANCE}\n`;
  res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
});
server.listen({ fd: 3 }, () => console.log(`node serving pid=${process.pid}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
