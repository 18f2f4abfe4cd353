#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of the Pub/Sub emulator, for tests only.

The emulator cannot answer 503, 429 or 500, reset a connection or answer slowly; this proxy
can. It forwards every request to the upstream emulator, except when a scripted fault matches.

    fault_proxy.py UPSTREAM_HOST:PORT

It listens on 127.0.0.1 on a free port and prints that port on its first stdout line.

Control endpoints (not forwarded):
  POST /_faults   body: JSON list of rules, appended to the script. A rule:
                  {"match": ":publish",          # substring of "METHOD /path" ("" matches all)
                   "action": "status" | "reset" | "delay" | "garbage",
                   "status": 503,                # for "status" (body is a google.rpc.Status JSON)
                   "seconds": 5,                 # for "delay": sleep, then forward
                   "count": 3}                   # how many requests it applies to (-1: forever)
  DELETE /_faults  clears the script.
  GET /_stats      JSON: {"requests": {"METHOD /path": n}, "faults": {"action": n},
                          "authorization": [distinct Authorization header values seen]}
"""
import http.client
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = sys.argv[1]
lock = threading.Lock()
rules = []
stats = {"requests": {}, "faults": {}, "authorization": []}

STATUS_NAMES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
                500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED", 403: "PERMISSION_DENIED"}


def take_fault(key):
    with lock:
        for rule in rules:
            if rule.get("match", "") in key and rule.get("count", 1) != 0:
                if rule.get("count", 1) > 0:
                    rule["count"] = rule.get("count", 1) - 1
                action = rule.get("action", "status")
                stats["faults"][action] = stats["faults"].get(action, 0) + 1
                return dict(rule)
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _control(self, body):
        global rules
        if self.command == "POST" and self.path == "/_faults":
            with lock:
                rules.extend(json.loads(body or b"[]"))
            return self._send(200, b"{}")
        if self.command == "DELETE" and self.path == "/_faults":
            with lock:
                rules = []
            return self._send(200, b"{}")
        if self.command == "GET" and self.path == "/_stats":
            with lock:
                return self._send(200, json.dumps(stats).encode())
        return self._send(404, b'{"error":{"code":404,"message":"no such control endpoint","status":"NOT_FOUND"}}')

    def _handle(self):
        body = self._body()
        if self.path.startswith("/_"):
            return self._control(body)
        key = f"{self.command} {self.path.split('?')[0]}"
        with lock:
            stats["requests"][key] = stats["requests"].get(key, 0) + 1
            auth = self.headers.get("Authorization")
            if auth is not None and auth not in stats["authorization"]:
                stats["authorization"].append(auth)
        fault = take_fault(key)
        if fault:
            action = fault.get("action", "status")
            if action == "status":
                status = int(fault.get("status", 503))
                err = {"error": {"code": status, "message": f"injected {status}", "status": STATUS_NAMES.get(status, "UNKNOWN")}}
                return self._send(status, json.dumps(err).encode())
            if action == "garbage":
                return self._send(int(fault.get("status", 502)), b"<html>Bad Gateway</html>", "text/html")
            if action == "reset":
                # SO_LINGER 0 makes close() send a TCP RST.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.connection.close()
                self.close_connection = True
                return
            if action == "delay":
                time.sleep(float(fault.get("seconds", 5)))
        host, port = UPSTREAM.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self._send(resp.status, data, resp.getheader("Content-Type", "application/json"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
