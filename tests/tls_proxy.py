#!/usr/bin/env python3
"""Terminate TLS on 127.0.0.1 and pass the bytes on to a plain TCP server
(standard library only).

    tls_proxy.py CERT KEY UPSTREAM_HOST:PORT

Picks a free port and prints one line ``READY https://127.0.0.1:PORT``.
Puts an HTTPS front on the test git server, so that the tests can check
which CA certificates openim-release trusts. A client that refuses the
certificate only ends its own connection. Runs until killed.
"""

import socket
import ssl
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(context, client, upstream):
    try:
        tls = context.wrap_socket(client, server_side=True)
    except (OSError, ssl.SSLError):
        client.close()
        return
    try:
        plain = socket.create_connection(upstream)
    except OSError:
        tls.close()
        return
    back = threading.Thread(target=pump, args=(plain, tls), daemon=True)
    back.start()
    pump(tls, plain)
    back.join()
    tls.close()
    plain.close()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    cert, key, upstream = sys.argv[1:4]
    host, port = upstream.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    print(f"READY https://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(
            target=serve, args=(context, client, (host, int(port))), daemon=True
        ).start()


if __name__ == "__main__":
    main()
