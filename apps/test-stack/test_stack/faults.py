"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the local S3 server.

Containers get the proxy's URL as their S3 endpoint (``AWS_ENDPOINT_URL_S3``);
the proxy forwards each request to moto unchanged, except while a fault is
on. Each fault answers every request the way S3 or the network would fail:

=================  ==============================================================
``internal-error`` ``500 InternalError``
``unavailable``    ``503 ServiceUnavailable``
``slow-down``      ``503 SlowDown`` (S3's throttling answer)
``reset``          the connection is reset (RST) before any answer
``slow``           the answer is held for ``slow_seconds`` (longer than the upload
                   budget), then forwarded
``no-bucket``      ``404 NoSuchBucket``: the bucket is gone, as seen from the
                   function (the stored objects stay, so nothing the proxy does
                   loses data that was already written)
``expired-token``  ``400 ExpiredToken``: the credentials have expired
=================  ==============================================================

The proxy counts the requests it forwarded and the ones each fault answered.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final, Literal, get_args

Fault = Literal[
    "internal-error",
    "unavailable",
    "slow-down",
    "reset",
    "slow",
    "no-bucket",
    "expired-token",
]
FAULTS: Final[tuple[Fault, ...]] = get_args(Fault)

#: Status, S3 error code and message of each fault answered with an error document.
ERROR_ANSWERS: Final[dict[Fault, tuple[int, str, str]]] = {
    "internal-error": (500, "InternalError", "We encountered an internal error."),
    "unavailable": (503, "ServiceUnavailable", "Please reduce your request rate."),
    "slow-down": (503, "SlowDown", "Please reduce your request rate."),
    "no-bucket": (404, "NoSuchBucket", "The specified bucket does not exist"),
    "expired-token": (400, "ExpiredToken", "The provided token has expired."),
}
#: How long ``slow`` holds an answer by default (the wrapper's budget is shorter).
DEFAULT_SLOW_SECONDS: Final = 3.0
#: Hop-by-hop headers a proxy must not pass on.
_HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
)


class FaultProxy:
    """Forward HTTP to ``upstream``, failing every request while a fault is on."""

    def __init__(self, upstream: str, *, slow_seconds: float = DEFAULT_SLOW_SECONDS) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname or parsed.port is None:
            raise ValueError(
                f"upstream {upstream!r} must be http://HOST:PORT (the local S3 server's URL)"
            )
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port
        self.slow_seconds = slow_seconds
        #: Requests answered by each fault, and ``forwarded`` for the rest.
        self.counts: Counter[str] = Counter()
        self._fault: Fault | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fault-proxy",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """The proxy's URL, to give containers as their S3 endpoint."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def fault(self) -> Fault | None:
        """The fault that is on (``None``: every request is forwarded)."""
        with self._lock:
            return self._fault

    def set_fault(self, fault: Fault | None) -> None:
        """Turn ``fault`` on (``None`` turns faults off)."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose one of: {', '.join(FAULTS)}")
        with self._lock:
            self._fault = fault

    @contextmanager
    def window(self, fault: Fault) -> Iterator[None]:
        """``fault`` is on for the duration of the block."""
        self.set_fault(fault)
        try:
            yield
        finally:
            self.set_fault(None)

    def start(self) -> FaultProxy:
        """Start serving; returns the proxy."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1


def error_document(code: str, message: str) -> bytes:
    """S3's XML error body."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>FAULTPROXY</RequestId></Error>"
    ).encode()


def _handler_class(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_HEAD(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fault = proxy.fault
            if fault is None:
                proxy._count("forwarded")
                self._forward(body)
                return
            proxy._count(fault)
            if fault == "reset":
                # SO_LINGER with a zero timeout makes close() send RST, not FIN.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()
                return
            if fault == "slow":
                time.sleep(proxy.slow_seconds)
                self._forward(body)
                return
            status, code, message = ERROR_ANSWERS[fault]
            document = error_document(code, message)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(document)
            except OSError:
                # The client gave up first (its attempt timed out).
                self.close_connection = True

        def _forward(self, body: bytes) -> None:
            upstream = http.client.HTTPConnection(
                proxy.upstream_host, proxy.upstream_port, timeout=30
            )
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
            except OSError:
                self._answer_quietly(502)
                return
            finally:
                upstream.close()
            try:
                self.send_response(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in _HOP_BY_HOP | {"content-length", "server", "date"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            except OSError:
                # The client gave up (a slow answer past its timeout).
                self.close_connection = True

        def _answer_quietly(self, status: int) -> None:
            try:
                self.send_error(status, "the local S3 server did not answer")
            except OSError:
                self.close_connection = True

    return Handler
