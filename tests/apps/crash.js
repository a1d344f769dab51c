// Crash the way KIND says: "type" (a TypeError: a code bug) or "refused" (ECONNREFUSED: external).
const kind = process.argv[2] || "type";
console.log("node app starting");
if (kind === "refused") {
  const err = new Error("connect ECONNREFUSED 127.0.0.1:5432");
  err.code = "ECONNREFUSED";
  err.syscall = "connect";
  throw err;
}
const user = undefined;
console.log(user.name);
