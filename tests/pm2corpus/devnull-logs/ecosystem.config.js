// A chatty service whose output nobody wants: PM2's two ways of saying "discard".
module.exports = {
  apps: [
    {
      name: "chatty",
      script: "chatty.js",
      out_file: "/dev/null",
      error_file: "NULL",
      instances: 2,
      log_max_size: "16K",
    },
  ],
};
