// PM2 on Windows, or apps that prefer a message to a signal.
module.exports = {
  apps: [{
    name: "graceful-msg",
    script: "app.js",
    shutdown_with_message: true,
    kill_timeout: 2000,
  }],
};
