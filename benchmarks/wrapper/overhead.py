"""What the wrapper costs a function: cold start and warm invocations.

Run: ``make bench-wrapper`` (or ``hatch run python benchmarks/wrapper/overhead.py``).

Everything is measured against a baseline taken in the same run, because the
machines this runs on are shared and noisy: the cold start of the same
function without the wrapper, and the same warm handler unwrapped. S3 is moto's
server on 127.0.0.1, so upload figures are the wrapper's own work plus a local
HTTP round trip, not S3's latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

APP = textwrap.dedent(
    """
    import json

    LIMIT = 100


    def price(items):
        total = 0
        for item in items:
            if item.get("discount"):
                total += item["price"] * 0.9
            else:
                total += item["price"]
        return round(total, 2)


    def handler(event, context):
        if not event.get("items"):
            return {"statusCode": 400}
        return {"statusCode": 200, "body": json.dumps({"total": price(event["items"])})}
    """
)

COLD = textwrap.dedent(
    """
    import importlib, os, time
    # In Lambda the runtime client is loaded before the handler: so here too.
    import awslambdaric.bootstrap
    t = time.perf_counter()
    module = importlib.import_module(os.environ["BENCH_MODULE"])
    handler = getattr(module, "handler")
    print((time.perf_counter() - t) * 1000)
    """
)

WARM = textwrap.dedent(
    """
    import json, os, statistics, sys, time
    import app
    mode = sys.argv[1]
    count = int(sys.argv[2])
    if mode == "unwrapped":
        handler = app.handler
    else:
        from coverage_wrapper import coverage_handler
        handler = coverage_handler(app.handler)
    event = {"items": [{"price": 10}, {"price": 20, "discount": True}]}
    handler(event, None)  # the first call pays for imports: not a warm call
    times = []
    for _ in range(count):
        t = time.perf_counter()
        handler(event, None)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({"p50": statistics.median(times), "p95": times[int(len(times) * 0.95) - 1]}))
    """
)


def run(code: str, args: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-runs", type=int, default=15)
    parser.add_argument("--warm-calls", type=int, default=300)
    args = parser.parse_args(argv)

    import boto3
    from moto.server import ThreadedMotoServer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "task"
        root.mkdir()
        (root / "app.py").write_text(APP)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "AWS_"))}
        base.update(
            {
                "PYTHONPATH": os.pathsep.join([str(root), *sys.path[1:]]),
                "LAMBDA_TASK_ROOT": str(root),
                "AWS_LAMBDA_FUNCTION_NAME": "bench",
                "COVERAGE_SPOOL_DIR": str(Path(tmp) / "spool"),
                "COVERAGE_LOG_LEVEL": "WARNING",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
            }
        )
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket="bench-coverage")
        try:
            s3_env = {
                **base,
                "COVERAGE_S3_BUCKET": "bench-coverage",
                "AWS_ENDPOINT_URL_S3": endpoint,
            }
            zero_code = {
                "BENCH_MODULE": "coverage_wrapper.handler",
                "COVERAGE_ORIGINAL_HANDLER": "app.handler",
            }
            cold_cases = {
                "unwrapped": {**base, "BENCH_MODULE": "app"},
                "zero-code, disabled": {**base, **zero_code, "COVERAGE_ENABLED": "false"},
                "zero-code, measuring": {**s3_env, **zero_code},
            }
            cold: dict[str, float] = {}
            for name, env in cold_cases.items():
                samples = [float(run(COLD, [], env, root)) for _ in range(args.cold_runs)]
                cold[name] = statistics.median(samples)
            warm_cases = {
                "unwrapped": ("unwrapped", base),
                "decorated, no bucket (spool only)": ("decorated", base),
                "decorated, upload to moto": ("decorated", s3_env),
            }
            warm: dict[str, dict[str, float]] = {}
            for name, (mode, env) in warm_cases.items():
                warm[name] = json.loads(run(WARM, [mode, str(args.warm_calls)], env, root))
        finally:
            server.stop()

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print(f"\nCold start: import of the handler module (median of {args.cold_runs} processes)")
    print("| case | ms | vs unwrapped |\n| --- | ---: | ---: |")
    for name, millis in cold.items():
        print(f"| {name} | {millis:.1f} | +{millis - cold['unwrapped']:.1f} ms |")
    print(f"\nWarm invocation ({args.warm_calls} calls after the first)")
    print("| case | p50 ms | p95 ms | p50 overhead |\n| --- | ---: | ---: | ---: |")
    for name, value in warm.items():
        overhead = value["p50"] - warm["unwrapped"]["p50"]
        print(f"| {name} | {value['p50']:.3f} | {value['p95']:.3f} | +{overhead:.3f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
