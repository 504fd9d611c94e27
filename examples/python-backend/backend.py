#!/usr/bin/env python3
"""A small chat backend behind scserver's gateway, in Python (stdlib only).

scserver holds the WebSocket connections; this process decides who may
connect, subscribe and publish, answers procedures, and talks back to the
clients through scserver's HTTP API. See docs/gateway.md.

    SC_API_URL=http://127.0.0.1:8000 SC_API_KEY=... python3 backend.py --port 9000

Users and their passwords are fixed here (alice/wonderland, bob/builder);
a client passes them in the WebSocket URL's query: ?user=alice&password=...

Channels: "chat/<room>" is open to every user; "private/<user>" only to
that user. Publishes to chat rooms are rewritten as {"from", "text"} so
that nobody can speak in someone else's name. Procedures: "whoami",
"add" ([a, b] -> a + b), "announce" (publishes through the HTTP API).
"""

import argparse
import json
import os
import sys
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USERS = {"alice": "wonderland", "bob": "builder"}
API_URL = os.environ.get("SC_API_URL", "http://127.0.0.1:8000")
API_KEY = os.environ.get("SC_API_KEY", "")


def api(method, params):
    """Calls scserver's HTTP API; returns its result or raises."""
    req = urllib.request.Request(
        API_URL.rstrip("/") + "/api/" + method,
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json", "Authorization": "apikey " + API_KEY},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)["result"]


def refuse(name, message):
    return {"error": {"name": name, "message": message}}


def connect(req):
    q = urllib.parse.parse_qs(req.get("query", ""))
    user = q.get("user", [""])[0]
    if not user or USERS.get(user) != q.get("password", [""])[0]:
        return refuse("LoginError", "unknown user or wrong password")
    return {"result": {
        "user": user,
        "info": {"name": user.capitalize()},
        "channels": ["private/" + user],
    }}


def subscribe(req):
    channel, user = req.get("channel", ""), req.get("user", "")
    if channel.startswith("chat/") or channel == "private/" + user:
        return {"result": {}}
    return refuse("ForbiddenError", "you may not subscribe to " + channel)


def publish(req):
    channel, user = req.get("channel", ""), req.get("user", "")
    if not channel.startswith("chat/"):
        return refuse("ForbiddenError", "you may not publish to " + channel)
    data = req.get("data")
    text = data.get("text") if isinstance(data, dict) else data
    if not isinstance(text, str) or not text.strip():
        return refuse("InvalidMessageError", "a message is {\"text\": \"...\"}")
    return {"result": {"data": {"from": user, "text": text}}}


def rpc(req):
    proc, data, user = req.get("procedure"), req.get("data"), req.get("user", "")
    if proc == "whoami":
        return {"result": {"data": {"user": user, "socketId": req.get("socketId")}}}
    if proc == "add":
        if not (isinstance(data, list) and len(data) == 2 and all(isinstance(x, (int, float)) for x in data)):
            return refuse("InvalidArgumentsError", "add takes [a, b]")
        return {"result": {"data": data[0] + data[1]}}
    if proc == "announce":
        res = api("publish", {"channel": "chat/lobby", "data": {"from": "backend", "text": user + " says hello"}})
        return {"result": {"data": res}}
    return refuse("UnknownProcedureError", "no procedure " + str(proc))


ROUTES = {"/connect": connect, "/subscribe": subscribe, "/publish": publish, "/rpc": rpc}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        route = ROUTES.get(self.path)
        if route is None:
            self.send_error(404)
            return
        try:
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            body = json.dumps(route(req)).encode()
        except Exception as e:  # a bug here must not look like an answer
            self.send_error(500, str(e))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        if os.environ.get("BACKEND_VERBOSE"):
            sys.stderr.write("backend: " + fmt % args + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    args = ap.parse_args()
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
