// Spends its time in a function with a known name (the .cpuprofile finds it); holds some objects.
const kept = [];
function hotKnownFunction() {
  let s = 0;
  for (let i = 0; i < 200000; i++) s += Math.sqrt(i);
  return s;
}
for (let i = 0; i < 1000; i++) kept.push({ id: i, name: `object ${i}` });
setInterval(() => { for (let k = 0; k < 20; k++) hotKnownFunction(); }, 5);
if (process.env.HANDLE_SIGUSR1) process.on("SIGUSR1", () => {});
console.log("hot", kept.length);
