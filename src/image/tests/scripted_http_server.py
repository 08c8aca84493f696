#!/usr/bin/env python3
"""A scripted HTTP server for the registry client tests.

Usage: scripted_http_server.py SCRIPT.json
Listens on 127.0.0.1 on a free port and prints the port on stdout. The script
maps a request path (without the query) to a list of responses served in order;
the last one repeats. A response is {"status": int, "headers": {...},
"body": str} or, for large bodies, "body_repeat": {"text": str, "count": int}; "delay_s" stalls before answering.
"{PORT}" in header values and bodies is replaced by the server's port.
GET /__log returns every request so far as JSON: method, path, query,
authorization, and bytes_sent for the body (updated while it is sent).
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOCK = threading.Lock()
LOG = []
SERVED = {}


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        script = json.load(f)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/__log":
                with LOCK:
                    body = json.dumps(LOG).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            entry = {"method": "GET", "path": url.path, "query": url.query,
                     "authorization": self.headers.get("Authorization", ""),
                     "accept": self.headers.get("Accept", ""), "bytes_sent": 0}
            with LOCK:
                LOG.append(entry)
                responses = script.get(url.path)
                n = SERVED.get(url.path, 0)
                SERVED[url.path] = n + 1
            if not responses:
                response = {"status": 404, "body": "no script for " + url.path}
            else:
                response = responses[min(n, len(responses) - 1)]
            port = str(self.server.server_address[1])
            if "delay_s" in response:  # a stalled server
                time.sleep(response["delay_s"])
            if "body_repeat" in response:
                chunk = response["body_repeat"]["text"].encode()
                count = response["body_repeat"]["count"]
            else:
                chunk = response.get("body", "").replace("{PORT}", port).encode()
                count = 1
            self.send_response(response["status"])
            for name, value in response.get("headers", {}).items():
                self.send_header(name, value.replace("{PORT}", port))
            self.send_header("Content-Length", str(len(chunk) * count))
            self.end_headers()
            try:
                for _ in range(count):
                    self.wfile.write(chunk)
                    with LOCK:
                        entry["bytes_sent"] += len(chunk)
            except OSError:  # the client hung up (size limits, errors)
                pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # clients that hang up early are part of the tests

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
