"""The layer's external extension: S3 uploads after the runtime has answered, and at shutdown.

Lambda starts every executable in a layer's ``extensions/`` folder before
the runtime. Ours (``extensions/lambda-coverage``, see
:mod:`coverage_wrapper.extension_launcher`) registers for ``INVOKE`` and
``SHUTDOWN`` with the Extensions API, listens for the function process and
writes the hand-off marker (:mod:`coverage_wrapper.handoff`); from then on the function process only
writes snapshots into the spool and never imports boto3.

On ``INVOKE`` it waits until the function process says the invocation is
done (the runtime is then posting the answer, so the caller does not wait
for what follows), uploads what the spool holds for at most
:data:`INVOKE_UPLOAD_BUDGET`, and asks for the next event; Lambda ends the
invoke phase when it has. While S3 fails, uploads pause (see
:mod:`coverage_wrapper.uploader`), so an outage does not hold every
invocation's sandbox for the budget. On ``SHUTDOWN`` (the
runtime has had SIGTERM and saved its last snapshot) it waits, within the
deadline, for that snapshot, uploads everything left, removes the marker
and exits.

Nothing heavy is imported before it registers; boto3 is imported after the
first invocation's answer (or at the first upload, if that comes first), so
that the shutdown deadline is spent uploading. Errors are logged and never
end the extension: a crashed extension would make Lambda reset the sandbox.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import shutil
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from coverage_wrapper import logs
from coverage_wrapper.config import WrapperConfig, load_config
from coverage_wrapper.constants import EXTENSION_NAME
from coverage_wrapper.delivery import deliver_spool, log_failure
from coverage_wrapper.handoff import Inbox
from coverage_wrapper.logs import log
from coverage_wrapper.spool import Spool
from coverage_wrapper.uploader import S3Uploader

API_PREFIX: Final = "/2020-01-01/extension"
#: Seconds kept back from an invocation's deadline (as the in-call upload does).
INVOKE_MARGIN: Final = 0.5
#: The longest the upload after an invocation may take (seconds; never more
#: than ``COVERAGE_UPLOAD_TIMEOUT``). Lambda's invoke phase ends only when
#: the extension asks for its next event, and until then the sandbox takes
#: no new event and its time is billed: what does not fit waits for the next
#: invocation, or for SHUTDOWN, whose upload has the whole deadline.
INVOKE_UPLOAD_BUDGET: Final = 1.5
#: How much the extension lowers its scheduling priority once registered (``nice``).
NICENESS: Final = 10
#: Seconds kept back from the shutdown deadline, so the extension exits before the kill.
SHUTDOWN_MARGIN: Final = 0.1
#: Seconds of the shutdown kept for uploading, however long the final snapshot takes.
SHUTDOWN_UPLOAD_RESERVE: Final = 0.8
#: Where the Python runtimes of Lambda keep the boto3 they provide, when it is
#: not in the interpreter's own site-packages.
RUNTIME_DIRS: Final = ("/var/runtime",)
LAUNCHER_FILE: Final = "extension_launcher.py"


class ExtensionsApiError(Exception):
    """The Extensions API answered a call with an error."""


class ExtensionsApi:
    """A client of Lambda's Extensions API (``2020-01-01``) on ``AWS_LAMBDA_RUNTIME_API``."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._host = host or address
        self._port = int(port) if host else 80
        self.identifier: str | None = None

    def _call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        # No timeout: ``event/next`` blocks until Lambda has an event.
        connection = http.client.HTTPConnection(self._host, self._port)
        try:
            all_headers = dict(headers or {})
            if self.identifier is not None:
                all_headers["Lambda-Extension-Identifier"] = self.identifier
            data = None if body is None else json.dumps(body).encode()
            connection.request(method, f"{API_PREFIX}/{path}", body=data, headers=all_headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        if response.status >= 300:
            raise ExtensionsApiError(
                f"{method} {path} answered {response.status}: {payload[:200]!r}"
            )
        return response, payload

    def register(self, name: str, events: list[str]) -> str:
        """Register as ``name`` for ``events``; return the extension's identifier."""
        response, _ = self._call(
            "POST", "register", {"events": events}, {"Lambda-Extension-Name": name}
        )
        identifier = response.getheader("Lambda-Extension-Identifier")
        if not identifier:
            raise ExtensionsApiError("register answered without a Lambda-Extension-Identifier")
        self.identifier = identifier
        return identifier

    def next_event(self) -> dict[str, Any]:
        """Block until the next event (``INVOKE`` or ``SHUTDOWN``)."""
        _, payload = self._call("GET", "event/next")
        event = json.loads(payload)
        if not isinstance(event, dict):
            raise ExtensionsApiError(f"event/next answered {payload[:200]!r}")
        return event


class CoverageExtension:
    """Uploads the sandbox's spool between invocations and at shutdown."""

    def __init__(self, config: WrapperConfig, api: ExtensionsApi, inbox: Inbox) -> None:
        self.config = config
        self.api = api
        self.inbox = inbox
        self.spool = Spool(config.spool_dir, config.spool_max_files)
        self._uploader: S3Uploader | None = None
        self.uploads = 0

    def run(self) -> int:
        """Serve events until SHUTDOWN; return the exit code."""
        while True:
            event = self.api.next_event()
            kind = event.get("eventType")
            if kind == "INVOKE":
                self._guarded(self.on_invoke, event)
            elif kind == "SHUTDOWN":
                self._guarded(self.on_shutdown, event)
                self.inbox.close()
                return 0

    def _guarded(self, action: Callable[[dict[str, Any]], None], event: dict[str, Any]) -> None:
        try:
            action(event)
        except Exception as exc:  # noqa: BLE001 - a crashed extension resets the sandbox
            log(
                logging.ERROR,
                "The coverage extension failed to handle an event",
                event_type=event.get("eventType"),
                error_type=type(exc).__name__,
                error=str(exc),
            )

    def on_invoke(self, event: dict[str, Any]) -> None:
        """Wait for the invocation's end in the function process, then upload."""
        request_id = str(event.get("requestId") or "")
        deadline = _monotonic_deadline(event.get("deadlineMs"), INVOKE_MARGIN)
        self.inbox.drain()
        if self.inbox.live_attached():
            self.inbox.wait_done(request_id, deadline)
        # Anything said about this or an earlier invocation is now settled.
        self.inbox.done.clear()
        self.upload(min(deadline, time.monotonic() + INVOKE_UPLOAD_BUDGET))
        self.warm_up()

    def warm_up(self) -> None:
        """Import boto3 and make the S3 client once, after the first answer.

        The shutdown deadline (under 2 s, shared with the runtime's SIGTERM)
        must not be spent importing boto3: it is done here, where the caller
        already has the answer and only the billed duration grows, once per
        sandbox.
        """
        if self.config.s3_bucket and self._uploader is None:
            self.uploader().client()

    def on_shutdown(self, event: dict[str, Any]) -> None:
        """Wait (within the deadline) for the runtime's last snapshot, then upload everything."""
        deadline = _monotonic_deadline(event.get("deadlineMs"), SHUTDOWN_MARGIN)
        wait_until = max(time.monotonic(), deadline - SHUTDOWN_UPLOAD_RESERVE)
        final = self.inbox.wait_final(wait_until)
        log(
            logging.DEBUG,
            "Shutdown: uploading what is left",
            reason=event.get("shutdownReason"),
            final_snapshot=final,
        )
        self.upload(deadline, last_chance=True)

    def upload(self, deadline: float, *, last_chance: bool = False) -> None:
        """Send the spool until ``deadline`` (monotonic); log what happened.

        ``COVERAGE_UPLOAD_TIMEOUT`` caps it too. At ``last_chance`` (SHUTDOWN)
        a pause after an error does not hold the
        upload back: the sandbox is going, and whatever waited for the pause
        to end would be lost with it.
        """
        if not self.config.s3_bucket or not self.spool.entries(any_process=True):
            return
        uploader = self.uploader()
        if uploader.paused and not last_chance:
            return
        deadline = min(deadline, time.monotonic() + self.config.upload_timeout)
        delivery = deliver_spool(self.spool, uploader, deadline, any_process=True)
        self.uploads += len(delivery.sent)
        if delivery.sent:
            log(
                logging.INFO,
                "Coverage file uploaded successfully",
                s3_key=delivery.sent[-1].key,
                file_size=delivery.sent[-1].size,
                upload_time_ms=round(delivery.upload_time_ms, 1),
                files=len(delivery.sent),
                uploaded_by="extension",
            )
        failure = delivery.failure
        if failure is not None:
            log_failure(failure, self.config.s3_bucket)
        elif delivery.left:
            log(
                logging.WARNING,
                "No time left to upload coverage data; kept in the spool",
                files=delivery.left,
            )

    def uploader(self) -> S3Uploader:
        """The extension's uploader (boto3 is imported at its first upload)."""
        if self._uploader is None:
            make_boto3_importable()
            self._uploader = S3Uploader(
                self.config.s3_bucket or "",
                timeout=self.config.upload_timeout,
                region=self.config.region,
            )
        return self._uploader


def make_boto3_importable() -> None:
    """Find boto3 where the Lambda runtime keeps it, if this interpreter does not see it.

    The runtime's own interpreter has it in its site-packages on recent
    runtimes; older ones keep it in ``/var/runtime``, which Lambda puts on
    the runtime's path but not on an extension's.
    """
    import importlib.util

    if importlib.util.find_spec("boto3") is not None:
        return
    for folder in RUNTIME_DIRS:
        if os.path.isdir(os.path.join(folder, "boto3")) and folder not in sys.path:
            sys.path.append(folder)
            return


def _monotonic_deadline(deadline_ms: Any, margin: float) -> float:
    """A Lambda deadline (epoch milliseconds) as a ``time.monotonic()`` value, less ``margin``."""
    now = time.monotonic()
    try:
        left = float(deadline_ms) / 1000 - time.time()
    except (TypeError, ValueError):
        left = 2.0
    return now + max(0.0, left - margin)


def main(name: str = EXTENSION_NAME) -> int:
    """Register as ``name`` and serve events until SHUTDOWN (the executable's entry point)."""
    config = load_config()
    logs.configure(config.log_level)
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        log(
            logging.ERROR, "AWS_LAMBDA_RUNTIME_API is not set: this runs only as a Lambda extension"
        )
        return 1
    api = ExtensionsApi(address)
    # Disabled: stay registered (an extension that quits fails init) but only
    # for SHUTDOWN, so invocations never wait on it.
    events = ["INVOKE", "SHUTDOWN"] if config.enabled else ["SHUTDOWN"]
    try:
        api.register(name, events)
    except (OSError, ExtensionsApiError) as exc:
        log(logging.ERROR, "The coverage extension could not register", error=str(exc))
        return 1
    if not config.enabled:
        api.next_event()
        return 0
    # The extension wakes when the function says it is done, just before the
    # runtime posts the answer: at normal priority it took the CPU the answer
    # needed (+0.75 ms p50 against +0.46 ms at this niceness, one run of the
    # local runtime on 2 cores; BENCHMARKS.md). 10, not 19: at SHUTDOWN it
    # must still upload within the deadline beside a function's busy threads.
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    try:
        inbox = Inbox.bind(config.spool_dir)
    except OSError as exc:
        # Without the marker the function uploads in the call, as without the
        # extension; the extension still sends what is left at shutdown.
        log(
            logging.ERROR,
            f"COVERAGE_SPOOL_DIR={config.spool_dir!r}: the extension cannot work there "
            f"({exc}); point it at a writable folder under /tmp",
        )
        inbox = Inbox.unbound(config.spool_dir)
    return CoverageExtension(config, api, inbox).run()


def install_extension(layer_root: Path) -> Path | None:
    """Put the extension's executable into ``layer_root/extensions``.

    The executable is the launcher of the wrapper already laid out in
    ``layer_root/python`` (so the two always come from the same release).
    Returns its path, or None when that wrapper has no extension.
    """
    source = layer_root / "python" / "coverage_wrapper" / LAUNCHER_FILE
    if not source.is_file():
        return None
    destination = layer_root / "extensions" / EXTENSION_NAME
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    destination.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return destination
