"""How many merges per second one rolling data file sustains.

Run: ``hatch run python benchmarks/combiner/rolling_rate.py`` (``--events N``).

Each event merges one new data file into the rolling file, as the Lambda
handler does for an S3 object-created event (read the rolling file, merge,
conditional write). The rolling file starts at a realistic size: the merge
of ``--seed-files`` data files of the test stack's main function, in the
``contexts`` shape of bench.py. Two rows:

- against moto's S3 server on 127.0.0.1 (``merge_into_rolling``, the
  handler's own code: GETs, merge, conditional PUT); the round trips are
  loopback ones, so real S3 adds its latency per event on top;
- local work only: the same merge of the same bytes, with no S3 at all.

Events run one after another: concurrent events on one rolling file
serialise anyway (a write that loses the race reads and merges again).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(REPO / "apps" / "test-stack"))

from coverage_combiner.lambda_handler import ROLLING_NAME, merge_into_rolling  # noqa: E402
from coverage_combiner.merge import Merger  # noqa: E402
from coverage_combiner.outputs import write_data_file  # noqa: E402

# bench.py, beside this script: the same data files as the combine benchmark.
generate: Callable[[int, Path, str], None] = importlib.import_module("bench").generate


def rolling_bytes(files: list[Path], work: Path) -> bytes:
    """The merge of ``files`` as a data file: the rolling file at the start."""
    merger = Merger()
    for path in files:
        merger.add_bytes(str(path), path.read_bytes())
    target = work / "rolling.coverage"
    write_data_file(merger.result(), target, None)
    merger.close()
    return target.read_bytes()


def local_rate(rolling: bytes, newcomers: list[Path], work: Path) -> float:
    """Events per second with no S3: merge the rolling bytes and one new file, write."""
    started = time.perf_counter()
    for path in newcomers:
        merger = Merger()
        merger.add_bytes("rolling", rolling, combined_ok=True)
        merger.add_bytes(str(path), path.read_bytes())
        target = work / "next.coverage"
        write_data_file(merger.result(), target, None)
        merger.close()
        rolling = target.read_bytes()
    return len(newcomers) / (time.perf_counter() - started)


def s3_rate(rolling: bytes, newcomers: list[Path], source: Path) -> float:
    """Events per second through the handler's merge, against moto's server."""
    from test_stack.s3_server import moto_s3_server, s3_client, s3_environment

    with moto_s3_server() as url:
        os.environ.update(s3_environment(url))
        client = s3_client(url)
        bucket = "rolling-rate"
        client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key=f"coverage-combined/{ROLLING_NAME}", Body=rolling)
        keys = []
        for path in newcomers:
            key = path.relative_to(source).as_posix()
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            keys.append(key)
        started = time.perf_counter()
        for key in keys:
            outcome = merge_into_rolling(
                bucket, [key], raw_prefix="coverage/", combined_prefix="coverage-combined/"
            )
            if outcome["rejected"] or not outcome["merged"]:
                raise SystemExit(f"{key} was not merged: {outcome}")
        return len(keys) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--seed-files", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rolling-rate-") as tmp:
        work = Path(tmp)
        source = work / "files"
        generate(args.seed_files + args.events, source, "contexts")
        files = sorted(source.rglob("*.coverage"))
        seed, newcomers = files[: args.seed_files], files[args.seed_files :]
        rolling = rolling_bytes(seed, work)
        local = local_rate(rolling, newcomers, work)
        remote = s3_rate(rolling, newcomers, source)
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; "
        f"rolling file {len(rolling) // 1024} KiB ({args.seed_files} files merged), "
        f"{args.events} events of one new data file each"
    )
    print("| where | merges per second | ms per merge |")
    print("| --- | ---: | ---: |")
    for name, rate in (("moto S3 on 127.0.0.1", remote), ("local work only", local)):
        print(f"| {name} | {rate:.1f} | {1000 / rate:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
