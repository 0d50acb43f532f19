#!/usr/bin/env python3
"""A local receiver for the notifications of openim-release, for its tests.

Python 3.11 standard library only; listens on 127.0.0.1 and talks to no other
host. It answers each chat bot's webhook as that service does, after checking
the message's shape and, where the service signs, its signature:

    POST /slack/<anything>        Slack incoming webhook: ``text`` and
                                  ``blocks`` (a header, a mrkdwn section);
                                  200 ``ok``, else 400 ``invalid_payload``
    POST /feishu/<anything>       Feishu/Lark custom bot: ``msg_type: post``
    POST /lark/<anything>         with ``content.post.zh_cn.{title,content}``;
                                  with a secret, ``timestamp`` (seconds, within
                                  an hour) and ``sign`` in the body, sign =
                                  base64(HMAC-SHA256(key="{timestamp}\\n{secret}",
                                  msg="")); 200 ``{"code":0,...}``, else 200
                                  ``{"code":19021,"msg":"sign match fail ..."}``
    POST /dingtalk?access_token=T DingTalk custom robot: ``msgtype: markdown``
                                  with ``markdown.{title,text}``; with a
                                  secret, query ``timestamp`` (ms, within an
                                  hour) and ``sign`` = base64(HMAC-SHA256(
                                  key=secret, msg="{timestamp}\\n{secret}"));
                                  200 ``{"errcode":0,"errmsg":"ok"}``, else 200
                                  ``{"errcode":310000,...}``
    POST /wecom?key=K             WeCom group robot: ``msgtype: markdown`` with
                                  ``markdown.content`` of at most 4096 bytes;
                                  200 ``{"errcode":0}``, else ``{"errcode":40058}``
    POST /webhook/<anything>      the generic JSON: ``event``, ``stage``,
                                  ``outcome``; with a secret, the header
                                  ``X-Openim-Release-Signature: sha256=<hex
                                  HMAC-SHA256(secret, body)>``; 204, else 401
    POST /status/<code>/...       answers <code> (a broken receiver)

Usage::

    python3 tests/fake_webhooks.py --port 0 [--secret KIND=SECRET ...]

prints ``READY http://127.0.0.1:PORT`` once listening. ``GET /_received``
returns every request: ``{"received": [{"path", "query", "headers", "body",
"kind", "ok", "problems"}]}`` (``ok``: shape and signature as the service
wants them); ``POST /_reset`` forgets them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import sys
import threading
import time
import urllib.parse

HOST = "127.0.0.1"


def b64_hmac(key: bytes, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


class Receiver:
    def __init__(self, secrets: dict[str, str]):
        self.secrets = secrets
        self.received: list[dict] = []
        self.lock = threading.Lock()

    def check(self, kind: str, query: dict, headers, raw: bytes, body) -> list[str]:
        problems: list[str] = []
        secret = self.secrets.get(kind)
        now = time.time()
        if not isinstance(body, dict):
            return ["the body is not a JSON object"]
        if kind == "slack":
            if not isinstance(body.get("text"), str) or not body["text"]:
                problems.append("no text")
            blocks = body.get("blocks")
            if not (isinstance(blocks, list) and blocks and blocks[0].get("type") == "header"
                    and any(b.get("type") == "section" and b["text"]["type"] == "mrkdwn"
                            for b in blocks)):
                problems.append("blocks: no header and mrkdwn section")
        elif kind in ("feishu", "lark"):
            post = body.get("content", {}).get("post", {}).get("zh_cn", {})
            if body.get("msg_type") != "post" or not post.get("title") \
                    or not isinstance(post.get("content"), list):
                problems.append("not a post message")
            for line in post.get("content", []):
                for el in line:
                    if el.get("tag") not in ("text", "a"):
                        problems.append(f"unknown element {el.get('tag')}")
            if secret:
                ts = body.get("timestamp")
                if not isinstance(ts, str) or not ts.isdigit() or abs(now - int(ts)) > 3600:
                    problems.append("timestamp (seconds, a string) missing or not within an hour")
                elif body.get("sign") != b64_hmac(f"{ts}\n{secret}".encode(), b""):
                    problems.append("sign match fail")
        elif kind == "dingtalk":
            md = body.get("markdown", {})
            if body.get("msgtype") != "markdown" or not md.get("title") or not md.get("text"):
                problems.append("not a markdown message")
            if "access_token" not in query:
                problems.append("no access_token")
            if secret:
                ts = query.get("timestamp", [""])[0]
                sign = query.get("sign", [""])[0]
                if not ts.isdigit() or abs(now * 1000 - int(ts)) > 3600 * 1000:
                    problems.append("timestamp (ms) missing or not within an hour")
                elif sign != b64_hmac(secret.encode(), f"{ts}\n{secret}".encode()):
                    problems.append("sign not match")
        elif kind == "wecom":
            content = body.get("markdown", {}).get("content")
            if body.get("msgtype") != "markdown" or not isinstance(content, str):
                problems.append("not a markdown message")
            elif len(content.encode()) > 4096:
                problems.append("markdown.content longer than 4096 bytes")
            if "key" not in query:
                problems.append("no key")
        elif kind == "webhook":
            for k in ("event", "stage", "outcome", "title"):
                if k not in body:
                    problems.append(f"no {k}")
            if secret:
                want = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
                if headers.get("X-Openim-Release-Signature") != want:
                    problems.append("bad X-Openim-Release-Signature")
        return problems

    def answer(self, kind: str, problems: list[str]) -> tuple[int, str, str]:
        ok = not problems
        if kind == "slack":
            return (200, "text/plain", "ok") if ok else (400, "text/plain", "invalid_payload")
        if kind in ("feishu", "lark"):
            doc = {"code": 0, "msg": "success", "data": {}} if ok else {
                "code": 19021,
                "msg": "sign match fail or timestamp is not within one hour from current time"}
            return 200, "application/json", json.dumps(doc)
        if kind == "dingtalk":
            doc = {"errcode": 0, "errmsg": "ok"} if ok else {
                "errcode": 310000, "errmsg": "; ".join(problems)}
            return 200, "application/json", json.dumps(doc)
        if kind == "wecom":
            doc = {"errcode": 0, "errmsg": "ok"} if ok else {
                "errcode": 40058, "errmsg": "; ".join(problems)}
            return 200, "application/json", json.dumps(doc)
        return (204, "text/plain", "") if ok else (401, "text/plain", "; ".join(problems))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, status: int, ctype: str, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_GET(self):
        rx: Receiver = self.server.receiver
        if self.path == "/_received":
            with rx.lock:
                doc = {"received": list(rx.received)}
            return self.send(200, "application/json", json.dumps(doc))
        return self.send(404, "text/plain", "not found")

    def do_POST(self):
        rx: Receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/_reset":
            with rx.lock:
                rx.received.clear()
            return self.send(200, "application/json", "{}")
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        parts = url.path.strip("/").split("/")
        kind = parts[0]
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if kind == "status":
            status = int(parts[1])
            with rx.lock:
                rx.received.append({"path": url.path, "query": query, "kind": kind,
                                    "headers": dict(self.headers), "body": body,
                                    "ok": False, "problems": [f"answered {status}"]})
            return self.send(status, "text/plain", "receiver down")
        if kind not in ("slack", "feishu", "lark", "dingtalk", "wecom", "webhook"):
            return self.send(404, "text/plain", "not found")
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            problems = ["content-type is not application/json"]
        else:
            problems = rx.check(kind, query, self.headers, raw, body)
        with rx.lock:
            rx.received.append({"path": url.path, "query": query, "kind": kind,
                                "headers": dict(self.headers), "body": body,
                                "ok": not problems, "problems": problems})
        self.send(*rx.answer(kind, problems))

    def log_message(self, fmt, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Local receiver of openim-release's notifications.")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--secret", action="append", default=[], metavar="KIND=SECRET",
                   help="the signing secret of a format (dingtalk, feishu, lark, webhook)")
    args = p.parse_args(argv)
    secrets = dict(s.split("=", 1) for s in args.secret)
    server = Server((HOST, args.port), Handler)
    server.receiver = Receiver(secrets)
    print(f"READY http://{HOST}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
