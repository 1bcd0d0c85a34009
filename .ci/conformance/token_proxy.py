"""A loopback proxy that adds a bearer token to every request it forwards.

The MCP conformance suite sends no Authorization header and has no option to
add one, while Errand's /mcp requires a token. This proxy stands where a
real deployment's client would: it listens on a loopback port, adds
`Authorization: Bearer <token>` to requests for /mcp and forwards every request, headers and body
unchanged (Host and Origin included, so Errand's own origin check still
decides), then relays the answer. Errand's public URL is set to the proxy's
address, so the token's audience and the origin check see what a client
sees. Usage: token_proxy.py LISTEN_PORT UPSTREAM_PORT TOKEN_FILE
"""

import http.client
import http.server
import sys

LISTEN_PORT, UPSTREAM_PORT, TOKEN_FILE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(TOKEN_FILE) as f:
    TOKEN = f.read().strip()

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        # Only the MCP endpoint gets the token: the OAuth endpoints (which the
        # authorization scenarios reach through the same address) must see
        # what the suite sent.
        if self.path == "/mcp" or self.path.startswith("/mcp?"):
            headers["Authorization"] = f"Bearer {TOKEN}"
        upstream = http.client.HTTPConnection("127.0.0.1", UPSTREAM_PORT, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = forward

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", LISTEN_PORT), Proxy).serve_forever()
