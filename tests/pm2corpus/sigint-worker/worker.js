// Takes jobs off a queue; on SIGINT it finishes the job in hand before leaving.
let busy = false;
const timer = setInterval(() => {
  busy = true;
  setTimeout(() => { busy = false; }, 50);
}, 200);

console.log(`queue-worker: consuming ${process.env.QUEUE}`);

process.on("SIGINT", () => {
  console.log("queue-worker: SIGINT, finishing the current job");
  clearInterval(timer);
  const wait = setInterval(() => {
    if (!busy) {
      clearInterval(wait);
      console.log("queue-worker: queue closed");
      process.exit(0);
    }
  }, 10);
});
