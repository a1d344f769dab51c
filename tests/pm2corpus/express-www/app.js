// The shape of an Express generator app: app.js builds the handler, bin/www listens.
module.exports = (req, res) => {
  res.setHeader("content-type", "text/plain");
  res.end(`shop ${process.env.NODE_ENV} ${process.env.SHOP_BANNER || "-"}\n`);
};
