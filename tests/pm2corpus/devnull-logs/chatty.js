const fs = require("fs");
const path = require("path");

const id = process.env.NODE_APP_INSTANCE || process.env.CORRAL_INSTANCE;
const mark = (text) => fs.appendFileSync(path.join(__dirname, "marks.txt"), `chatty ${id}: ${text}\n`);
const line = "chatty ".repeat(40);
const timer = setInterval(() => {
  for (let i = 0; i < 50; i++) {
    console.log(line + i);
    console.error("warn " + line + i);
  }
}, 20);

process.on("SIGINT", () => {
  clearInterval(timer);
  mark("SIGINT");
  process.exit(0);
});
mark("up");  // its logs go nowhere: it leaves its marks in a file instead
