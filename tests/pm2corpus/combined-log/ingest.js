const id = process.env.NODE_APP_INSTANCE || process.env.CORRAL_INSTANCE;
console.log(`ingest ${id}: started`);
console.error(`ingest ${id}: no backlog`);
const timer = setInterval(() => {}, 1000);

process.on("SIGINT", () => {
  clearInterval(timer);
  console.log(`ingest ${id}: SIGINT, done`);
  process.exit(0);
});
