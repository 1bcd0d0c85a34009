"""An MCP Events callback, as a receiver such as ChatGPT runs one, verifying
every request with the `standardwebhooks` package (not Errand's code).

It answers the verification challenge by echoing it, acknowledges each
verified delivery with 202 and refuses a badly signed one with 401. It
prints `LISTENING <port>` once, then one JSON line per request it received:
{"kind": "verification" | "delivery", "verified": bool, "headers": {...},
"body": ...}. Usage: event_receiver.py WHSEC_SECRET
"""

import http.server
import json
import sys

from standardwebhooks import Webhook, WebhookVerificationError

SECRET = sys.argv[1]
hook = Webhook(SECRET)


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = hook.verify(raw, headers)
            verified = True
        except WebhookVerificationError:
            body, verified = json.loads(raw or b"null"), False
        kind = "verification" if isinstance(body, dict) and body.get("type") == "verification" else "delivery"
        print(json.dumps({"kind": kind, "verified": verified, "headers": headers, "body": body}), flush=True)
        if not verified:
            self.send_response(401)
            self.end_headers()
            return
        if kind == "verification":
            answer = json.dumps({"challenge": body["challenge"]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        else:
            self.send_response(202)
            self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
print(f"LISTENING {server.server_address[1]}", flush=True)
server.serve_forever()
