"""What the caller waits for, and what lands in S3, on the local runtime: one run, every variant.

Run: ``hatch run python benchmarks/wrapper/lifecycle.py`` (``--invocations 1000``).

Each variant is one container of the local runtime (real ``awslambdaric``,
freeze between invokes, the layer unzipped as ``/opt`` would be, the
extension started from its ``extensions/`` folder, SIGTERM then SHUTDOWN at
the end) serving a trivial handler:

- ``bare``: the handler alone, no layer (and with the layer attached but
  the handler not instrumented, to see what the extension's process costs;
  and with a do-nothing extension instead, to see what any extension's
  round trip through the local Runtime API costs here);
- ``naive``: the approach the product replaces: a new ``Coverage`` started,
  stopped, saved and uploaded with boto3 inside every call;
- ``layer <mode>/<policy>``: the coverage layer, in zero-code mode with each
  flush policy, and as a decorator and a context manager (adaptive).

Caller-visible latency is the local runtime's ``duration_ms``: from handing
the event to the runtime until the runtime posted the answer. The invoke
phase also counts the extension's work after the answer (billed, not waited
for by the caller). S3 is moto's server on 127.0.0.1: an upload here is a
loopback round trip, far cheaper than S3's 20-80 ms.

With ``--compare REF`` (repeatable), zero-code/adaptive also runs with the
layer's wrapper and extension of git revision ``REF``: a change measured
against what it replaces, in one run.

``layer zero-code/adaptive, extension disabled`` is the layer's wrapper
without its extension, with the same policy: what the function process
itself adds. CPU per call is the processes' user plus system time over the
warm calls (``/proc/<pid>/stat``) divided by their number: the runtime's
process, and the extensions'.

Peak RSS is the sum over the container's processes (the runtime and, with
the layer, its extension) of each one's high-water mark (``VmHWM`` in
``/proc/<pid>/status``), read after the last warm invocation, before the
container shuts down.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from coverage_wrapper.constants import ZERO_CODE_HANDLER
from test_stack.functions import LambdaFunction
from test_stack.instrument import instrument
from test_stack.layer import Layer, add_extensions, build_wrapper_layer, with_wrapper_of
from test_stack.pool import LocalLambda
from test_stack.s3_server import moto_s3_server, s3_client, s3_environment

BUCKET = "lifecycle-bench"

APP = textwrap.dedent(
    """\
    def handler(event, context):
        if event.get("items"):
            return {"statusCode": 200, "count": len(event["items"])}
        return {"statusCode": 400}
    """
)

DECORATED = textwrap.dedent(
    """\
    from coverage_wrapper import coverage_handler

    import app


    handler = coverage_handler(app.handler)
    """
)

CONTEXT_MANAGER = textwrap.dedent(
    """\
    from coverage_wrapper import CoverageContext

    import app


    def handler(event, context):
        with CoverageContext(context=context):
            return app.handler(event, context)
    """
)

#: An external extension that does nothing: registers for INVOKE and asks for the next event.
NOOP_EXTENSION = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    import http.client, json, os

    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
    base = "/2020-01-01/extension"


    def call(method, path, body=None, headers=None):
        connection = http.client.HTTPConnection(host, int(port))
        connection.request(method, base + path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response, payload


    response, _ = call(
        "POST", "/register", json.dumps({"events": ["INVOKE", "SHUTDOWN"]}),
        {"Lambda-Extension-Name": "noop"},
    )
    identifier = {"Lambda-Extension-Identifier": response.getheader("Lambda-Extension-Identifier")}
    while json.loads(call("GET", "/event/next", headers=identifier)[1])["eventType"] != "SHUTDOWN":
        pass
    """
)

NAIVE = textwrap.dedent(
    """\
    import os

    import boto3
    import coverage

    import app

    s3 = boto3.client("s3")
    ROOT = os.path.dirname(os.path.abspath(__file__))


    def handler(event, context):
        path = os.path.join(os.environ["TMPDIR"], f"naive-{context.aws_request_id}.coverage")
        cov = coverage.Coverage(data_file=path, include=[f"{ROOT}/*"], branch=True)
        cov.start()
        try:
            return app.handler(event, context)
        finally:
            cov.stop()
            cov.save()
            s3.upload_file(path, os.environ["BENCH_BUCKET"], f"naive/{context.aws_request_id}")
            os.remove(path)
    """
)


@dataclass(frozen=True)
class Variant:
    """One way of running the handler."""

    name: str
    function: LambdaFunction
    prefix: str


@dataclass(frozen=True)
class Figures:
    """What one variant measured."""

    name: str
    cold_ms: float
    p50_ms: float
    p99_ms: float
    phase_p50_ms: float
    objects_warm: int
    objects_total: int
    peak_rss_mb: float
    runtime_cpu_us: float
    extension_cpu_us: float


def variants(
    code: Path, layer: Layer, bare_layer: Layer, noop_layer: Layer, compared: dict[str, Layer]
) -> list[Variant]:
    """Every variant, each with a key prefix of its own."""
    base = LambdaFunction(name="bench", code_dir=code, handler="app.handler", timeout=30)
    found = [
        Variant("bare", replace(base, name="bare"), "bare/"),
        # The layer attached, the function not instrumented: what a second
        # process in the sandbox (the extension answering INVOKE) costs alone.
        Variant(
            "bare + the layer's extension",
            replace(base, name="bare-extension", layer=layer).with_environment(
                COVERAGE_S3_BUCKET=BUCKET, COVERAGE_LOG_LEVEL="WARNING"
            ),
            "bare-extension/",
        ),
        Variant(
            "bare + a do-nothing extension",
            replace(base, name="bare-noop-extension", layer=noop_layer),
            "bare-noop-extension/",
        ),
        Variant(
            "naive per-call upload",
            replace(base, name="naive", handler="naive.handler").with_environment(
                BENCH_BUCKET=BUCKET
            ),
            "naive/",
        ),
    ]
    for policy in ("adaptive", "invocation", "interval", "shutdown"):
        prefix = f"zero-code-{policy}/"
        function = instrument(
            replace(base, name=f"zc-{policy}"),
            layer=layer,
            bucket=BUCKET,
            prefix=prefix,
            COVERAGE_FLUSH_POLICY=policy,
            COVERAGE_LOG_LEVEL="WARNING",
        )
        found.append(Variant(f"layer zero-code/{policy}", function, prefix))
    for mode, handler in (("decorator", "decorated.handler"), ("context", "managed.handler")):
        function = replace(base, name=mode, handler=handler, layer=layer).with_environment(
            COVERAGE_S3_BUCKET=BUCKET,
            COVERAGE_S3_PREFIX=f"{mode}/",
            COVERAGE_LOG_LEVEL="WARNING",
        )
        found.append(Variant(f"layer {mode}/adaptive", function, f"{mode}/"))
    # The wrapper without its extension (installed from a zip): the upload is in the call.
    no_extension = instrument(
        replace(base, name="zc-no-extension"),
        layer=bare_layer,
        bucket=BUCKET,
        prefix="no-extension/",
        COVERAGE_LOG_LEVEL="WARNING",
    )
    found.append(Variant("wrapper without extension/invocation", no_extension, "no-extension/"))
    disabled = instrument(
        replace(base, name="zc-extension-disabled"),
        layer=bare_layer,
        bucket=BUCKET,
        prefix="extension-disabled/",
        COVERAGE_FLUSH_POLICY="adaptive",
        COVERAGE_LOG_LEVEL="WARNING",
    )
    found.append(
        Variant("layer zero-code/adaptive, extension disabled", disabled, "extension-disabled/")
    )
    for number, (ref, other) in enumerate(compared.items()):
        prefix = f"compared-{number}/"
        function = instrument(
            replace(base, name=f"zc-compared-{number}"),
            layer=other,
            bucket=BUCKET,
            prefix=prefix,
            COVERAGE_FLUSH_POLICY="adaptive",
            COVERAGE_LOG_LEVEL="WARNING",
        )
        found.append(Variant(f"layer zero-code/adaptive, wrapper of {ref}", function, prefix))
    assert all(v.function.handler != ZERO_CODE_HANDLER or v.function.layer for v in found)
    return found


def count_objects(endpoint: str, prefix: str) -> int:
    """Objects under ``prefix`` (every page)."""
    client = s3_client(endpoint)
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        total += page.get("KeyCount", 0)
    return total


@dataclass
class Run:
    """One variant's container and what it measured so far."""

    variant: Variant
    pool: LocalLambda
    cold_ms: float = 0.0
    objects_before: int = 0
    caller: list[float] = field(default_factory=list)
    phase: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    cpu_before: tuple[float, float] = (0.0, 0.0)
    cpu_after: tuple[float, float] = (0.0, 0.0)


EVENT = {"items": [1, 2, 3]}


def start(variant: Variant, endpoint: str, work: Path, stack: contextlib.ExitStack) -> Run:
    """A container for ``variant``: its cold start and a few warm-up invocations."""
    pool = stack.enter_context(
        LocalLambda(
            [variant.function],
            environment=s3_environment(endpoint),
            work_dir=work / variant.function.name,
            max_concurrency=1,
            idle_timeout=None,
        )
    )
    cold = pool.invoke(variant.function.name, EVENT)
    assert cold.ok, cold.payload
    for _ in range(5):
        pool.invoke(variant.function.name, EVENT)
    return Run(
        variant,
        pool,
        cold_ms=(cold.init_duration_ms or 0.0) + cold.duration_ms,
        objects_before=count_objects(endpoint, variant.prefix),
    )


def serve(run: Run, invocations: int) -> None:
    """``invocations`` warm calls of the run's container."""
    name = run.variant.function.name
    for _ in range(invocations):
        started = time.perf_counter()
        result = run.pool.invoke(name, EVENT)
        run.phase.append((time.perf_counter() - started) * 1000)
        assert result.ok, result.payload
        run.caller.append(result.duration_ms)


def peak_rss_mb(run: Run) -> float:
    """The container's processes' peak resident memory, summed, in MiB."""
    total_kb = 0
    for container in run.pool.containers(run.variant.function.name):
        for pid in container.pids:
            status = Path(f"/proc/{pid}/status").read_text()
            line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
            total_kb += int(line.split()[1])
    return total_kb / 1024


def cpu_seconds(run: Run) -> tuple[float, float]:
    """CPU time (user + system) so far of the container's runtime and of its extensions."""
    ticks = os.sysconf("SC_CLK_TCK")
    runtime = extensions = 0.0
    for container in run.pool.containers(run.variant.function.name):
        extension_pids = set(container.extension_pids)
        for pid in container.pids:
            # The command name (field 2) may hold spaces; the fields after it are fixed.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / ticks
            if pid in extension_pids:
                extensions += seconds
            else:
                runtime += seconds
    return runtime, extensions


def measure_all(
    variants: list[Variant], endpoint: str, work: Path, invocations: int, rounds: int
) -> list[Figures]:
    """Every variant's warm calls, interleaved in ``rounds`` so that noise hits all alike."""
    with contextlib.ExitStack() as stack:
        runs = [start(v, endpoint, work, stack) for v in variants]
        for run in runs:
            run.cpu_before = cpu_seconds(run)
        for _ in range(rounds):
            for run in runs:
                serve(run, invocations // rounds)
        for run in runs:
            run.cpu_after = cpu_seconds(run)
        warm = {id(r): count_objects(endpoint, r.variant.prefix) - r.objects_before for r in runs}
        for run in runs:
            run.peak_rss_mb = peak_rss_mb(run)
    # Every container is retired now: SIGTERM, SHUTDOWN, the last uploads.
    figures = []
    for run in runs:
        caller = sorted(run.caller)
        figures.append(
            Figures(
                name=run.variant.name,
                cold_ms=run.cold_ms,
                p50_ms=statistics.median(caller),
                p99_ms=caller[max(0, int(len(caller) * 0.99) - 1)],
                phase_p50_ms=statistics.median(run.phase),
                objects_warm=warm[id(run)],
                objects_total=count_objects(endpoint, run.variant.prefix),
                peak_rss_mb=run.peak_rss_mb,
                runtime_cpu_us=(run.cpu_after[0] - run.cpu_before[0]) / len(caller) * 1e6,
                extension_cpu_us=(run.cpu_after[1] - run.cpu_before[1]) / len(caller) * 1e6,
            )
        )
    return figures


def table(figures: list[Figures], invocations: int) -> str:
    """The figures as a Markdown table, overheads against ``bare`` and ``naive``."""
    bare = figures[0]
    naive = next(f for f in figures if f.name.startswith("naive"))
    naive_extra = naive.p50_ms - bare.p50_ms
    rows = [
        f"| variant | cold start ms | caller p50 ms | caller p99 ms | p50 over bare "
        f"| vs naive's overhead | invoke phase p50 ms | objects per {invocations} warm "
        "| objects in all | peak RSS MiB | RSS over bare | runtime CPU µs/call "
        "| extension CPU µs/call |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    for f in figures:
        extra = f.p50_ms - bare.p50_ms
        ratio = f"{naive_extra / extra:.0f}x less" if extra > 0.001 else "-"
        if f is bare or f is naive:
            ratio = "-"
        rows.append(
            f"| {f.name} | {f.cold_ms:.0f} | {f.p50_ms:.3f} | {f.p99_ms:.3f} | {extra:+.3f} "
            f"| {ratio} | {f.phase_p50_ms:.2f} | {f.objects_warm} | {f.objects_total} "
            f"| {f.peak_rss_mb:.1f} | {f.peak_rss_mb - bare.peak_rss_mb:+.1f} "
            f"| {f.runtime_cpu_us:.0f} | {f.extension_cpu_us:.0f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run every variant once and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=1000, help="warm invocations each")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="REF",
        help="also run zero-code/adaptive with the wrapper (and extension) of this git revision",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lifecycle-bench-") as tmp, moto_s3_server() as url:
        work = Path(tmp)
        code = work / "code"
        code.mkdir()
        (code / "app.py").write_text(APP)
        (code / "naive.py").write_text(NAIVE)
        (code / "decorated.py").write_text(DECORATED)
        (code / "managed.py").write_text(CONTEXT_MANAGER)
        layer = build_wrapper_layer(work / "opt")
        bare_layer = Layer(work / "opt-without-extension")
        bare_layer.python_dir.mkdir(parents=True)
        (bare_layer.python_dir / "coverage_wrapper").symlink_to(
            layer.python_dir / "coverage_wrapper"
        )
        noop = work / "noop-extension" / "noop"
        noop.parent.mkdir()
        noop.write_text(NOOP_EXTENSION)
        noop_layer = Layer(work / "opt-noop-extension")
        add_extensions(noop_layer, [noop])
        s3_client(url).create_bucket(Bucket=BUCKET)
        compared = {
            ref: with_wrapper_of(layer, ref, work / f"opt-{number}")
            for number, ref in enumerate(args.compare)
        }
        found = variants(code, layer, bare_layer, noop_layer, compared)
        figures = measure_all(found, url, work, args.invocations, args.rounds)
    version = ".".join(map(str, sys.version_info[:3]))
    print(
        f"Python {version}, {args.invocations} warm invocations per variant "
        f"in {args.rounds} interleaved rounds\n"
    )
    print(table(figures, args.invocations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
