const path = require("path");

module.exports = {
  apps: [
    {
      name: "gateway",
      script: "api/index.js",
      node_args: "--max-old-space-size=256",
      env: { NODE_ENV: "development" },
      env_production: { NODE_ENV: "production" },
    },
    {
      name: "mailer",
      script: "mailer.py",
      cwd: path.join(__dirname, "jobs"),
      interpreter: "python3",
      cron_restart: "0 4 * * *",
      env_production: { MAIL_MODE: "live" },
    },
  ],
  deploy: {
    production: {
      user: "deploy",
      host: "203.0.113.10",
      ref: "origin/main",
      repo: "git@example.invalid:acme/gateway.git",
      path: "/srv/gateway",
      "post-deploy": "npm ci && pm2 reload ecosystem.config.js --env production",
    },
  },
};
