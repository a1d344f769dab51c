module.exports = () => "dev-server v1";
