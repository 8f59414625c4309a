"""A small HTTP/1.1 server on 127.0.0.1 for Torpor's transport and instance
metadata tests. Prints its port on the first line of standard output, then
serves until standard input closes or --lifetime seconds pass.

Paths:
  GET|POST /echo          200, JSON: method, path, headers (in order), body,
                          client port (to see connection reuse)
  GET /slow?seconds=S     waits S seconds, then 200
  GET /reset              closes the connection without answering
  GET /big?bytes=N        200 with N bytes
  GET /status?code=C      answers with status C and a small body
  IMDSv2:
  PUT /latest/api/token                              token (needs the TTL header)
  GET /latest/meta-data/iam/security-credentials/    role name (needs the token)
  GET /latest/meta-data/iam/security-credentials/R   role credentials JSON
  GET /_stats             JSON: counts of requests per path
"""
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "fake-imds-token"
ROLE = "torpor-role"
COUNTS = {}
LOCK = threading.Lock()


class Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when a test opens dozens at once.
    request_queue_size = 256
    daemon_threads = True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _count(self, path):
        with LOCK:
            COUNTS[path] = COUNTS.get(path, 0) + 1

    def _send(self, status, body, content_type="application/json", extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self._count(parts.path)
        body = self._body()
        if parts.path == "/echo":
            self._send(200, json.dumps({
                "method": self.command, "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("utf-8", "replace"), "clientPort": self.client_address[1]}))
        elif parts.path == "/slow":
            time.sleep(float(query.get("seconds", ["5"])[0]))
            self._send(200, "{}")
        elif parts.path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            self.close_connection = True
        elif parts.path == "/big":
            self._send(200, b"x" * int(query.get("bytes", ["1000"])[0]), "text/plain")
        elif parts.path == "/status":
            self._send(int(query.get("code", ["500"])[0]), "status body", "text/plain")
        elif parts.path == "/_stats":
            with LOCK:
                self._send(200, json.dumps(COUNTS))
        elif parts.path == "/latest/api/token" and self.command == "PUT":
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                self._send(400, "missing TTL", "text/plain")
            else:
                self._send(200, TOKEN, "text/plain")
        elif parts.path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                self._send(401, "", "text/plain")
                return
            role = parts.path.rsplit("/", 1)[1]
            if role == "":
                self._send(200, ROLE, "text/plain")
            elif role == ROLE:
                self._send(200, json.dumps({
                    "Code": "Success", "LastUpdated": "2026-11-26T17:00:00Z", "Type": "AWS-HMAC",
                    "AccessKeyId": "ASIAIMDSEXAMPLE", "SecretAccessKey": "imds-secret-example",
                    "Token": "imds-session-token", "Expiration": "2099-01-01T00:00:00Z"}))
            else:
                self._send(404, "", "text/plain")
        else:
            self._send(404, "{}")

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle


def main():
    lifetime = float(sys.argv[sys.argv.index("--lifetime") + 1]) if "--lifetime" in sys.argv else 120.0
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(timeout=lifetime)
    server.shutdown()


if __name__ == "__main__":
    main()
