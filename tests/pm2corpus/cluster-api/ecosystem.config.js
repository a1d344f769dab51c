// An API in cluster mode: two workers share a port that only the code knows.
module.exports = {
  apps: [
    {
      name: "cluster-api",
      script: "./server.js",
      exec_mode: "cluster",
      instances: 2,
      max_memory_restart: "200M",
      env: { NODE_ENV: "development" },
      env_production: { NODE_ENV: "production" },
    },
  ],
};
