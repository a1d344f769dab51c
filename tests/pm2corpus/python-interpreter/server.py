"""A small HTTP API started by PM2 with interpreter: python3; its port lives here."""
import argparse
import http.server

PORT = 29104

parser = argparse.ArgumentParser()
parser.add_argument("--greeting", default="hi")
options = parser.parse_args()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"py-api {options.greeting}\n".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", PORT), Handler)
print(f"py-api: serving on {PORT}")
try:
    server.serve_forever()
except KeyboardInterrupt:  # PM2 stops apps with SIGINT
    print("py-api: SIGINT, closing the server")
    server.server_close()
