const http = require("http");

const server = http.createServer((req, res) => res.end("graceful-msg ok\n"));
server.listen(29113);

process.on("message", (msg) => {
  if (msg === "shutdown") {
    console.log("graceful-msg: shutdown message, closing");
    server.close(() => process.exit(0));
  }
});
