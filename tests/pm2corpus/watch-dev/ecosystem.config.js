// Development: restart when the sources change.
module.exports = {
  apps: [
    {
      name: "dev-server",
      script: "server.js",
      watch: ["src", "server.js"],
      ignore_watch: ["node_modules", "*.log"],
      watch_delay: 300,
      out_file: "./dev-server.log",
    },
  ],
};
