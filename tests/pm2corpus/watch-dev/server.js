const http = require("http");
const message = require("./src/message");

const server = http.createServer((req, res) => res.end(message() + "\n"));
server.listen(29112, () => console.log("dev-server: listening on 29112"));

process.on("SIGINT", () => {
  console.log("dev-server: SIGINT, closing");
  server.close(() => process.exit(0));
});
