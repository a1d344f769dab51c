const http = require("http");

const PORT = 29110;
const server = http.createServer((req, res) => res.end(`gateway ${process.env.NODE_ENV}\n`));
server.listen(PORT, () => console.log(`gateway: up on ${PORT}`));

process.on("SIGINT", () => {
  console.log("gateway: SIGINT, closing");
  server.close(() => process.exit(0));
});
