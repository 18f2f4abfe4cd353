#!/usr/bin/env python3
"""Fake OAuth2 token endpoint and GCE metadata server on 127.0.0.1. TEST-ONLY.

Binds 127.0.0.1 port 0 and prints the port on the first line of stdout.

Environment:
  TEST_CERT       PEM certificate whose key signs the assertions (required for POST /token)
  EXPIRES_IN      expires_in of issued tokens, seconds (default 3600)
  MODE            ok | 500 | garbage | slow (default ok), applies to /token and metadata token
  SLOW_SECONDS    how long "slow" sleeps before answering (default 5)
  ISSUE_DELAY     seconds to sleep before issuing a good token (default 0), to widen races

Endpoints:
  POST /token     JWT bearer grant; verifies the assertion with google-auth (signature with
                  TEST_CERT, aud == this URL, scope present)
  GET  /computeMetadata/v1/instance/service-accounts/default/token   needs Metadata-Flavor: Google
  GET  /computeMetadata/v1/project/project-id                        needs Metadata-Flavor: Google
  GET  /stats     {"token_issued": n, "metadata_issued": n, "rejected": n}
"""
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import google.auth.jwt

CERT = open(os.environ["TEST_CERT"]).read() if os.environ.get("TEST_CERT") else None
EXPIRES_IN = int(os.environ.get("EXPIRES_IN", "3600"))
MODE = os.environ.get("MODE", "ok")
SLOW_SECONDS = float(os.environ.get("SLOW_SECONDS", "5"))
ISSUE_DELAY = float(os.environ.get("ISSUE_DELAY", "0"))
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

lock = threading.Lock()
stats = {"token_issued": 0, "metadata_issued": 0, "rejected": 0}


def count(name):
    with lock:
        stats[name] += 1
        return stats[name]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def send(self, status, body, content_type="application/json", extra=None):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def failure_mode(self):
        """Answers according to MODE; returns True when it did."""
        if MODE == "500":
            self.send(500, json.dumps({"error": "internal_failure", "error_description": "test server failure"}))
            return True
        if MODE == "garbage":
            self.send(200, b"<html>this is not json</html>", content_type="text/html")
            return True
        if MODE == "slow":
            time.sleep(SLOW_SECONDS)
            self.send(500, json.dumps({"error": "too_slow"}))
            return True
        return False

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/stats":
            with lock:
                self.send(200, json.dumps(stats))
            return
        if path.startswith("/computeMetadata/"):
            if self.headers.get("Metadata-Flavor") != "Google":
                count("rejected")
                self.send(403, "Missing Metadata-Flavor:Google header.", content_type="text/plain")
                return
            flavor = {"Metadata-Flavor": "Google"}
            if path == "/computeMetadata/v1/project/project-id":
                self.send(200, "metadata-project", content_type="application/text", extra=flavor)
                return
            if path == "/computeMetadata/v1/instance/service-accounts/default/token":
                if self.failure_mode():
                    return
                time.sleep(ISSUE_DELAY)
                n = count("metadata_issued")
                self.send(200, json.dumps({"access_token": "metadata-token-%d" % n, "expires_in": EXPIRES_IN,
                                           "token_type": "Bearer"}), extra=flavor)
                return
        self.send(404, "not found", content_type="text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        if urllib.parse.urlsplit(self.path).path != "/token":
            self.send(404, "not found", content_type="text/plain")
            return
        if self.failure_mode():
            return
        form = urllib.parse.parse_qs(raw)
        expected_audience = "http://127.0.0.1:%d%s" % (self.server.server_address[1], self.path)
        try:
            if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                raise ValueError("wrong Content-Type %r" % self.headers.get("Content-Type"))
            if form.get("grant_type") != [GRANT]:
                raise ValueError("wrong grant_type %r" % form.get("grant_type"))
            claims = google.auth.jwt.decode(form["assertion"][0], certs=CERT, audience=expected_audience)
            if not claims.get("scope"):
                raise ValueError("no scope claim")
            if claims.get("iss") != claims.get("sub"):
                raise ValueError("iss != sub")
        except Exception as error:  # noqa: BLE001 - any failure is a refusal
            count("rejected")
            self.send(400, json.dumps({"error": "invalid_grant", "error_description": str(error)}))
            return
        time.sleep(ISSUE_DELAY)
        n = count("token_issued")
        self.send(200, json.dumps({"access_token": "ya29.test-token-%d" % n, "expires_in": EXPIRES_IN,
                                   "token_type": "Bearer"}))


def exit_with_parent():
    """Exits when the test process that started us is gone, so no server outlives a test run."""
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main():
    # The test runner may start us with SIGTERM blocked or ignored; make it stop us.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=exit_with_parent, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
