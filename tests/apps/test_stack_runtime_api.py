"""The local Runtime and Extensions APIs answer as Lambda's do, over real HTTP."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from test_stack.runtime_api import Invocation, RuntimeApi


@pytest.fixture
def api() -> Iterator[RuntimeApi]:
    """A Runtime API server of one container."""
    server = RuntimeApi(function_name="orders", function_version="$LATEST", handler="app.handler")
    server.start()
    yield server
    server.close()


def request(
    api: RuntimeApi,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request; returns status, headers and the parsed JSON body."""
    host, port = api.address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None
    finally:
        connection.close()


def invocation(request_id: str = "req-1") -> Invocation:
    """An event as the container delivers it."""
    return Invocation(
        request_id=request_id,
        payload=b'{"hello": "world"}',
        deadline_ms=1_900_000_000_000,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:orders",
        trace_id="Root=1-5f0c3a1e-0123456789abcdef01234567;Sampled=0",
    )


def next_in_background(
    api: RuntimeApi, path: str, headers: dict[str, str] | None = None
) -> tuple[threading.Thread, list[Any]]:
    """Start a blocking ``next`` call; return the thread and where its answer (or error) lands."""
    answers: list[Any] = []

    def call() -> None:
        try:
            answers.append(request(api, "GET", path, None, headers))
        except (http.client.HTTPException, OSError) as exc:
            answers.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    return thread, answers


RUNTIME = "/2018-06-01/runtime"
EXTENSION = "/2020-01-01/extension"


def test_next_answers_with_the_event_and_lambdas_headers(api: RuntimeApi) -> None:
    thread, answers = next_in_background(api, f"{RUNTIME}/invocation/next")
    assert api.wait_until(lambda: api.runtime_waiting, 5)
    api.deliver(invocation())
    thread.join(5)

    ((status, headers, body),) = answers
    assert status == 200
    assert body == {"hello": "world"}
    assert headers["Content-Type"] == "application/json"
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1900000000000"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:orders")
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")


def test_a_response_completes_the_invocation(api: RuntimeApi) -> None:
    thread, _ = next_in_background(api, f"{RUNTIME}/invocation/next")
    delivered = invocation()
    api.deliver(delivered)
    thread.join(5)

    status, _, body = request(api, "POST", f"{RUNTIME}/invocation/req-1/response", {"ok": True})

    assert (status, body) == (202, {"status": "OK"})
    assert delivered.outcome == "success"
    assert json.loads(delivered.response) == {"ok": True}


def test_an_error_keeps_its_type(api: RuntimeApi) -> None:
    thread, _ = next_in_background(api, f"{RUNTIME}/invocation/next")
    delivered = invocation()
    api.deliver(delivered)
    thread.join(5)
    error = {"errorType": "KeyError", "errorMessage": "'x'"}

    status, _, _ = request(
        api,
        "POST",
        f"{RUNTIME}/invocation/req-1/error",
        error,
        {"Lambda-Runtime-Function-Error-Type": "KeyError"},
    )

    assert status == 202
    assert (delivered.outcome, delivered.error_type) == ("error", "KeyError")


def test_an_answer_for_another_request_is_refused(api: RuntimeApi) -> None:
    status, _, body = request(api, "POST", f"{RUNTIME}/invocation/nobody/response", {})
    assert status == 400
    assert body["errorType"] == "InvalidRequestID"


def test_an_init_error_is_recorded(api: RuntimeApi) -> None:
    error = {"errorType": "Runtime.ImportModuleError", "errorMessage": "No module named 'app'"}
    status, _, _ = request(
        api,
        "POST",
        f"{RUNTIME}/init/error",
        error,
        {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
    )
    assert status == 202
    assert api.init_error == error
    assert api.init_error_type == "Runtime.ImportModuleError"


def test_an_extension_registers_and_gets_invoke_and_shutdown(api: RuntimeApi) -> None:
    status, headers, body = request(
        api,
        "POST",
        f"{EXTENSION}/register",
        {"events": ["INVOKE", "SHUTDOWN"]},
        {"Lambda-Extension-Name": "uploader"},
    )
    assert status == 200
    assert body == {
        "functionName": "orders",
        "functionVersion": "$LATEST",
        "handler": "app.handler",
    }
    identity = {"Lambda-Extension-Identifier": headers["Lambda-Extension-Identifier"]}

    thread, answers = next_in_background(api, f"{EXTENSION}/event/next", identity)
    api.deliver(invocation("req-9"))
    thread.join(5)
    assert answers[0][2]["eventType"] == "INVOKE"
    assert answers[0][2]["requestId"] == "req-9"
    assert answers[0][2]["deadlineMs"] == 1_900_000_000_000

    thread, answers = next_in_background(api, f"{EXTENSION}/event/next", identity)
    assert api.shut_down_extensions("spindown", 123) == ["uploader"]
    thread.join(5)
    assert answers[0][2] == {
        "eventType": "SHUTDOWN",
        "shutdownReason": "spindown",
        "deadlineMs": 123,
    }


@pytest.mark.parametrize(
    ("headers", "body", "error_type"),
    [
        ({}, {"events": ["INVOKE"]}, "InvalidRequest"),
        ({"Lambda-Extension-Name": "x"}, {"events": ["BOOT"]}, "InvalidEventType"),
        ({"Lambda-Extension-Name": "x"}, ["INVOKE"], "InvalidRequest"),
    ],
)
def test_a_bad_registration_is_refused(
    api: RuntimeApi, headers: dict[str, str], body: Any, error_type: str
) -> None:
    status, _, answer = request(api, "POST", f"{EXTENSION}/register", body, headers)
    assert status == 400
    assert answer["errorType"] == error_type
    assert not api.extensions


def test_an_unknown_extension_is_forbidden(api: RuntimeApi) -> None:
    status, _, body = request(
        api, "GET", f"{EXTENSION}/event/next", None, {"Lambda-Extension-Identifier": "nope"}
    )
    assert status == 403
    assert body["errorType"] == "Extension.UnknownExtensionIdentifier"


def test_an_unknown_endpoint_is_not_found(api: RuntimeApi) -> None:
    assert request(api, "GET", "/2018-06-01/runtime/whatever")[0] == 404


def test_closing_ends_an_open_next_without_an_answer(api: RuntimeApi) -> None:
    thread, answers = next_in_background(api, f"{RUNTIME}/invocation/next")
    assert api.wait_until(lambda: api.runtime_waiting, 5)

    api.release_waiters()
    thread.join(5)

    assert not thread.is_alive()
    assert isinstance(answers[0], http.client.RemoteDisconnected)
