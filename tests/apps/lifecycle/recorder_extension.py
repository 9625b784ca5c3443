"""An external extension that writes every lifecycle event it gets to ``EVENTS_FILE``.

Started by a shell script in the test layer's ``extensions/`` folder, which
passes the executable's name (the name Lambda registers it under). On
SHUTDOWN it also records whether the runtime process (whose id the probe
function wrote to the same file) still exists. ``RECORDER_INVOKE_WORK``
seconds of work follow each INVOKE before the next ``event/next``;
``RECORDER_IGNORE_SHUTDOWN=1`` makes it keep running after SHUTDOWN, so only
the deadline's kill ends it. ``RECORDER_INIT_ERROR=<message>`` reports an init
error after registering and exits, as an extension that cannot start does.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from typing import Any


def call(path: str, *, body: Any = None, headers: dict[str, str] | None = None) -> tuple[Any, Any]:
    """One request to the Extensions API; returns (response headers, parsed body)."""
    url = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2020-01-01/extension/{path}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(request) as response:  # noqa: S310 - a local http URL
        return response.headers, json.loads(response.read() or b"null")


def record(line: str) -> None:
    """Append one line to the shared events file."""
    with open(os.environ["EVENTS_FILE"], "a") as events:
        events.write(line + "\n")


def runtime_alive() -> bool:
    """Whether the process the probe recorded as the runtime still exists."""
    with open(os.environ["EVENTS_FILE"]) as events:
        pids = [int(line.split()[2]) for line in events if line.startswith("runtime started")]
    try:
        os.kill(pids[-1], 0)
    except (ProcessLookupError, IndexError):
        return False
    return True


def main(name: str) -> None:
    """Register, then record events until SHUTDOWN."""
    events = os.environ.get("RECORDER_EVENTS", "INVOKE,SHUTDOWN").split(",")
    headers, _ = call("register", body={"events": events}, headers={"Lambda-Extension-Name": name})
    identity = {"Lambda-Extension-Identifier": headers["Lambda-Extension-Identifier"]}
    record(f"extension registered {name}")
    failure = os.environ.get("RECORDER_INIT_ERROR")
    if failure:
        error_type = {"Lambda-Extension-Function-Error-Type": "Extension.ConfigInvalid"}
        call(
            "init/error",
            body={"errorMessage": failure, "errorType": "Extension.ConfigInvalid"},
            headers={**identity, **error_type},
        )
        sys.exit(1)
    while True:
        _, event = call("event/next", headers=identity)
        if event["eventType"] == "INVOKE":
            record(f"extension INVOKE {event['requestId']}")
            time.sleep(float(os.environ.get("RECORDER_INVOKE_WORK", "0")))
            continue
        runtime = "runtime-alive" if runtime_alive() else "runtime-gone"
        record(f"extension SHUTDOWN {event['shutdownReason']} {runtime} {event['deadlineMs']}")
        if os.environ.get("RECORDER_IGNORE_SHUTDOWN") == "1":
            time.sleep(3600)
        return


if __name__ == "__main__":
    main(sys.argv[1])
