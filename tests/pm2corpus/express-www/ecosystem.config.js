module.exports = {
  apps: [{
    name: "shop",
    script: "./bin/www",
    instances: 1,
    autorestart: true,
    max_memory_restart: "1G",
    env: { NODE_ENV: "development" },
    env_production: { NODE_ENV: "production", SHOP_BANNER: "prod" },
  }],
};
