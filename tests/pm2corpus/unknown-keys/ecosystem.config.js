// Keys PM2 tolerates (and some it never knew) must not stop the file from loading.
module.exports = {
  apps: [
    {
      name: "tolerant",
      script: "index.js",
      exec_mode: "fork",
      watch: false,
      kill_signal: "SIGINT",
      shutdown_with_message: false,
      time_format: "HH:mm:ss",
      merge_logs: true,
      combine_logs: true,
      instance_var: "INSTANCE_ID",
      source_map_support: true,
      vizion: false,
      owner: "team-payments",
      env: { PORT: "29107" },
    },
  ],
};
