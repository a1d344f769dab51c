// Spends its time in a function with a known name (the .cpuprofile finds it); holds some objects.
const kept = [];
function hotKnownFunction() {
  let s = 0;
  for (let i = 0; i < 200000; i++) s += Math.sqrt(i);
  return s;
}
for (let i = 0; i < 1000; i++) kept.push({ id: i, name: `object ${i}` });
// ~100 ms in hotKnownFunction per tick and a moment in the timers between: a stack sampled at any
// moment is almost always inside it (with 20 calls every 5 ms, a busy machine's sample landed in the timers)
setInterval(() => { for (let k = 0; k < 200; k++) hotKnownFunction(); }, 1);
if (process.env.HANDLE_SIGUSR1) process.on("SIGUSR1", () => {});
console.log("hot", kept.length);
