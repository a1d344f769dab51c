// Connects to its "database" first, then tells PM2 it is ready.
const http = require("http");

const server = http.createServer((req, res) => res.end("ready-api ok\n"));

setTimeout(() => {
  server.listen(29102, () => {
    console.log("ready-api: listening on 29102");
    process.send("ready");
  });
}, 300);

process.on("SIGINT", () => {
  console.log("ready-api: SIGINT, draining");
  server.close(() => process.exit(0));
});
