module.exports = {
  apps: [
    {
      name: "py-api",
      script: "server.py",
      interpreter: "python3",
      interpreter_args: "-u",
      args: "--greeting hello",
      cwd: __dirname,
      out_file: "./logs/py-api.out.log",
      error_file: "./logs/py-api.err.log",
      log_date_format: "YYYY-MM-DD HH:mm:ss",
    },
  ],
};
