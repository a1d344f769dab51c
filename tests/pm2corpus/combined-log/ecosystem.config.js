module.exports = {
  apps: [
    {
      name: "ingest",
      script: "ingest.js",
      instances: 2,
      merge_logs: true,
      out_file: "./logs/ingest-out.log",
      error_file: "./logs/ingest-err.log",
      log_file: "./logs/ingest-combined.log",
      time: true,
    },
  ],
};
