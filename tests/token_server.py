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
of a private registry do); wrong credentials get 401.

Refresh tokens, as Docker uses them (what ``docker login`` stores as
``identitytoken``): ``GET`` with U:P and ``offline_token=true`` (how dockerd
logs in) adds a ``refresh_token`` to the answer, as does ``POST /token`` with
the form ``grant_type=password&username=U&password=P&access_type=offline``.
``POST /token`` with ``grant_type=refresh_token&refresh_token=R&service=S&scope=…``
(scopes separated by spaces) gets a token for U. A refresh token is derived
from KEY and U, so it survives restarts. A refresh token sent as a Basic
password is refused (401), as a registry's token service does; a wrong or
missing refresh token gets 400 ``invalid_grant`` (RFC 6749).

Every request is appended to the log as ``METHOD PATH user=<name or -> status``
(a POST's form as the query of PATH, without passwords or tokens; a refresh
token sent as a password adds ``refresh-token-as-password``), never with a
password or token. Prints ``READY http://127.0.0.1:PORT`` once listening.
"""

import argparse
import base64
import hashlib
import hmac
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
    key_bytes = open(args.key, "rb").read()

    def refresh_token_of(user: str) -> str:
        return "rt." + hmac.new(key_bytes, f"refresh:{user}".encode(), hashlib.sha256).hexdigest()[:40]

    def owner_of(refresh_token: str):
        if refresh_token and secrets.compare_digest(refresh_token, refresh_token_of(args.user)):
            return args.user
        return None

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            pass

        def record(self, user, status):
            if args.log:
                path = getattr(self, "logged_path", self.path)
                note = getattr(self, "note", "")
                with open(args.log, "a", encoding="utf-8") as f:
                    f.write(f"{self.command} {path}{note} user={user or '-'} {status}\n")

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
                if owner_of(password):
                    self.note = " refresh-token-as-password"
                    return self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "a refresh token is no password: use the refresh_token grant"}]}, user)
                if user != args.user or not secrets.compare_digest(password, args.password):
                    return self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]}, user)
            offline = user is not None and query.get("offline_token", [""])[0] == "true"
            self.grant(user, query.get("service", [""])[0], query.get("scope", []), offline)

        def do_POST(self):
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            shown = {k: v for k, v in form.items() if k not in ("refresh_token", "password")}
            self.logged_path = url.path + "?" + urllib.parse.urlencode(shown, doseq=True)
            if url.path != "/token":
                return self.answer(404, {"error": "not found"}, None)
            field = lambda k: form.get(k, [""])[0]
            scopes = [s for s in field("scope").split(" ") if s]
            grant_type = field("grant_type")
            if grant_type == "refresh_token":
                user = owner_of(field("refresh_token"))
                if not user:
                    return self.answer(400, {"error": "invalid_grant", "error_description": "unknown refresh token"}, None)
                return self.grant(user, field("service"), scopes, False)
            if grant_type == "password":
                user = field("username")
                if user != args.user or not secrets.compare_digest(field("password"), args.password):
                    return self.answer(401, {"error": "invalid_grant", "error_description": "invalid credentials"}, user or None)
                return self.grant(user, field("service"), scopes, field("access_type") == "offline")
            return self.answer(400, {"error": "unsupported_grant_type"}, None)

        def grant(self, user, service, scopes, offline):
            access = []
            if user:
                access = [parse_scope(s) for s in scopes if s.count(":") >= 2]
            now = int(time.time())
            claims = {
                "iss": args.issuer,
                "sub": user or "",
                "aud": service,
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
            doc = {"token": token, "access_token": token, "expires_in": 300,
                   "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
            if offline:
                doc["refresh_token"] = refresh_token_of(user)
            self.answer(200, doc, user)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"READY http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
