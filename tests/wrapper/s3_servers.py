"""S3 endpoints for the wrapper's tests: moto's server, and a proxy that injects faults.

The proxy sits between the wrapper and moto's server on 127.0.0.1: requests
go through unchanged unless a fault is queued, in which case the proxy answers
with the status and S3 error document that S3 itself sends. So the wrapper's
real boto3 client, its retries and its error classification all run.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["FaultProxy", "free_port", "moto_s3_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """Run moto's server on 127.0.0.1 for the duration of the block; yield its URL."""
    from moto.server import ThreadedMotoServer

    # The server logs every request through werkzeug; keep the output readable.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class Fault:
    """One answer the proxy gives instead of forwarding."""

    status: int
    code: str
    message: str = "injected by the test"


@dataclass
class FaultLog:
    """What the proxy saw: one (method, path, answered status) per request."""

    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def puts(self) -> list[tuple[str, str, int]]:
        """The PUT requests, in order."""
        return [r for r in self.requests if r[0] == "PUT"]


class FaultProxy:
    """An HTTP proxy to moto that answers queued faults first.

    ``refuse(method, path)``, when given, stands for the caller's IAM
    policies (moto's server does not enforce them): a request it returns
    True for is answered ``AccessDenied``, as S3 answers what a policy denies.
    """

    def __init__(self, upstream: str, *, refuse: Callable[[str, str], bool] | None = None) -> None:
        self.upstream = urlsplit(upstream)
        self.refuse = refuse
        self.faults: list[Fault] = []
        self.log = FaultLog()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    fault = proxy.faults.pop(0) if proxy.faults else None
                if fault is None and proxy.refuse and proxy.refuse(self.command, self.path):
                    fault = ACCESS_DENIED
                if fault is not None:
                    document = (
                        '<?xml version="1.0" encoding="UTF-8"?>\n'
                        f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
                        "<RequestId>TEST</RequestId></Error>"
                    ).encode()
                    self._answer(fault.status, {"Content-Type": "application/xml"}, document)
                    return
                conn = http.client.HTTPConnection(
                    proxy.upstream.hostname or "127.0.0.1", proxy.upstream.port, timeout=10
                )
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                    passthrough = {
                        k: v
                        for k, v in response.getheaders()
                        if k.lower() not in ("transfer-encoding", "connection", "content-length")
                    }
                    self._answer(response.status, passthrough, payload)
                finally:
                    conn.close()

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                with proxy._lock:
                    proxy.log.requests.append((self.command, self.path, status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The proxy's endpoint URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, *faults: Fault) -> None:
        """Queue faults: the next requests get these answers, in order."""
        with self._lock:
            self.faults.extend(faults)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


SLOW_DOWN = Fault(503, "SlowDown", "Please reduce your request rate.")
INTERNAL_ERROR = Fault(500, "InternalError", "We encountered an internal error.")
ACCESS_DENIED = Fault(403, "AccessDenied", "Access Denied")
