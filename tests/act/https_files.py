#!/usr/bin/env python3
"""Serve a directory over HTTPS on 127.0.0.1 (standard library only).

    https_files.py ROOT CERT KEY [--log FILE]

Picks a free port and prints one line ``READY https://127.0.0.1:PORT``.
Stands in for GitHub's release download URLs in scripts/test-action:
``ROOT/<owner>/<repo>/releases/download/<tag>/<asset>``. Every request is
appended to the log (method and path), so a test can tell whether a file
was fetched at all. Runs until killed.
"""

import functools
import http.server
import ssl
import sys


def main():
    if len(sys.argv) not in (4, 6):
        sys.exit(__doc__)
    root, cert, key = sys.argv[1:4]
    log = sys.argv[5] if len(sys.argv) == 6 and sys.argv[4] == "--log" else None

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            if log:
                with open(log, "a", encoding="utf-8") as f:
                    f.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

    handler = functools.partial(Handler, directory=root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"READY https://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
