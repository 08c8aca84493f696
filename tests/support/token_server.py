#!/usr/bin/env python3
"""A registry token server for tests (distribution docs/spec/auth/token.md, jwt.md).

Usage: token_server.py KEY.pem CERT.pem ISSUER SERVICE USER:PASSWORD
Listens on 127.0.0.1 on a free port, prints the port on stdout, and answers
GET /token?service=S&scope=T:NAME:ACTIONS with {"token", "access_token",
"expires_in", "issued_at"}. Requests must carry Basic credentials matching
USER:PASSWORD (else 401). The JWT is RS256, signed with `openssl dgst` (no
python packages needed), and carries the certificate in its x5c header so a
registry whose rootcertbundle holds CERT accepts it.
GET /__log lists the requests (query and whether credentials matched).
"""
import base64
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
LOG = []


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der(cert_path):
    with open(cert_path, encoding="ascii") as f:
        pem = f.read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return base64.b64decode("".join(body.split()))


def parse_scope(scope):
    # type:name:actions where name may hold one ':' (host:port).
    kind, rest = scope.split(":", 1)
    name, actions = rest.rsplit(":", 1)
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


def main():
    key, cert, issuer, service, userpass = sys.argv[1:6]
    x5c = base64.b64encode(cert_der(cert)).decode()

    def sign(claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                             capture_output=True, check=True).stdout
        return signing_input + "." + b64url(sig)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/__log":
                with LOCK:
                    self.reply(200, LOG)
                return
            auth = self.headers.get("Authorization", "")
            given = ""
            if auth.startswith("Basic "):
                given = base64.b64decode(auth[6:]).decode(errors="replace")
            ok = given == userpass
            with LOCK:
                LOG.append({"path": url.path, "query": url.query, "credentials_ok": ok})
            if url.path != "/token":
                self.reply(404, {"error": "not found"})
                return
            if not ok:
                self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                return
            query = parse_qs(url.query)
            now = int(time.time())
            claims = {"iss": issuer, "sub": userpass.split(":", 1)[0], "aud": query.get("service", [service])[0],
                      "exp": now + 300, "nbf": now - 10, "iat": now, "jti": b64url(os.urandom(12)),
                      "access": [parse_scope(s) for s in query.get("scope", [])]}
            token = sign(claims)
            self.reply(200, {"token": token, "access_token": token, "expires_in": 300,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
