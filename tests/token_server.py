#!/usr/bin/env python3
"""A Docker registry token server (the bearer flow of ghcr.io and Docker Hub)
for the tests of openim-release. Python standard library plus the openssl CLI.

    token_server.py --port PORT --key KEY.pem --cert CERT.pem --user U --password P
                    [--issuer ISSUER] [--log FILE]

Answers ``GET /token?service=S&scope=repository:NAME:ACTIONS`` (scope may
repeat) with ``{"token", "access_token", "expires_in", "issued_at"}``: an RS256
JWT signed with KEY whose ``x5c`` header carries CERT, so a docker-registry
configured with ``auth.token.rootcertbundle: CERT`` (and the same issuer and
service) accepts it. Basic credentials U:P get every requested action; a
request without credentials gets a token granting nothing (as anonymous users
of a private registry do); wrong credentials get 401. Every request is
appended to the log as ``METHOD PATH user=<name or -> status``, never with a
password or token. Prints ``READY http://127.0.0.1:PORT`` once listening.
"""

import argparse
import base64
import http.server
import json
import os
import secrets
import subprocess
import tempfile
import time
import urllib.parse


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der_b64(cert_path: str) -> str:
    pem = open(cert_path, encoding="ascii").read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "".join(body.split())


def sign_rs256(key_path: str, data: bytes) -> bytes:
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(data)
        path = f.name
    try:
        return subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", key_path, path],
            check=True, capture_output=True,
        ).stdout
    finally:
        os.unlink(path)


def parse_scope(scope: str):
    # repository:NAME:pull,push — NAME may contain ':' only for a port (not here).
    kind, rest = scope.split(":", 1)
    name, actions = rest.rsplit(":", 1)
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--issuer", default="openim-release-test-issuer")
    ap.add_argument("--log")
    args = ap.parse_args()
    x5c = cert_der_b64(args.cert)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            pass

        def record(self, user, status):
            if args.log:
                with open(args.log, "a", encoding="utf-8") as f:
                    f.write(f"{self.command} {self.path} user={user or '-'} {status}\n")

        def answer(self, status, doc, user):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="token"')
            # Logged before the answer: a test reads the log as soon as
            # the client has it.
            self.record(user, status)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/token":
                return self.answer(404, {"error": "not found"}, None)
            query = urllib.parse.parse_qs(url.query)
            user = None
            header = self.headers.get("Authorization", "")
            if header.lower().startswith("basic "):
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except Exception:
                    return self.answer(400, {"error": "bad authorization header"}, None)
                if user != args.user or not secrets.compare_digest(password, args.password):
                    return self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]}, user)
            access = []
            if user:
                access = [parse_scope(s) for s in query.get("scope", []) if s.count(":") >= 2]
            now = int(time.time())
            claims = {
                "iss": args.issuer,
                "sub": user or "",
                "aud": query.get("service", [""])[0],
                "exp": now + 300,
                "nbf": now - 10,
                "iat": now,
                "jti": secrets.token_hex(8),
                "access": access,
            }
            header_doc = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
            signing_input = f"{b64url(json.dumps(header_doc).encode())}.{b64url(json.dumps(claims).encode())}"
            signature = sign_rs256(args.key, signing_input.encode())
            token = f"{signing_input}.{b64url(signature)}"
            self.answer(200, {"token": token, "access_token": token, "expires_in": 300,
                              "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}, user)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"READY http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
