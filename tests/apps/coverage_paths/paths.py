"""A function whose events pick a path, for the extension's tests (line numbers matter)."""

import sys
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    path = event.get("path")
    if path == "a":
        answer = "took a"
    elif path == "b":
        answer = "took b"
    elif path == "c":
        answer = "took c"
    else:
        raise ValueError(f"no path {path!r}")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore"))
    return {"answer": answer, "aws_sdk_modules": loaded}
