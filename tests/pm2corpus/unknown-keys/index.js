const http = require("http");

const server = http.createServer((req, res) => res.end("tolerant ok\n"));
server.listen(Number(process.env.PORT), "127.0.0.1");

process.on("SIGINT", () => {
  console.log("tolerant: SIGINT, bye");
  server.close(() => process.exit(0));
});
