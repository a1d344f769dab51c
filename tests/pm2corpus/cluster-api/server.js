const http = require("http");

const port = process.env.PORT || 29101;
const server = http.createServer((req, res) => {
  res.setHeader("content-type", "text/plain");
  res.end(`cluster-api ${process.pid}\n`);
});

server.listen(port, () => console.log(`cluster-api listening on ${port}`));

process.on("SIGINT", () => {
  console.log("cluster-api: SIGINT, closing the server");
  server.close(() => process.exit(0));
});
