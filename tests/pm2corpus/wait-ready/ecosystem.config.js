module.exports = {
  apps: [{
    name: "ready-api",
    script: "app.js",
    wait_ready: true,
    listen_timeout: 10000,
    kill_timeout: 3000,
  }],
};
