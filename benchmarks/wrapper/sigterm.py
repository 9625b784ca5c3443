"""The shutdown save's mechanism: its cost at init, and how soon SIGTERM's snapshot is saved.

Run::

    PYTHONPATH=packages/coverage-wrapper/src python benchmarks/wrapper/sigterm.py --rounds 30

Two mechanisms, each in a fresh process per round, interleaved over the
rounds (the machine is shared and noisy):

- ``sigwait`` (the baseline, the wrapper's earlier one): SIGTERM blocked in
  the main thread, a thread ``sigwait``-s for it, saves, then re-sends it;
- ``wakeup-fd`` (:func:`coverage_wrapper.shutdown.save_on_sigterm`): a Python
  SIGTERM handler's wake-up fd wakes a thread, which saves and ends the
  process with SIGTERM's status.

Per round: the CPU time of installing the mechanism, the time from the
``kill()`` to the save (the save writes ``time.monotonic()``, the same clock
in both processes), and from the ``kill()`` to the parent's ``waitpid``
seeing the process gone (SIGTERM's status checked). The save is a file
write: the figures are the mechanism's, not a snapshot's. Printed: the
best and the median over the rounds, and the ratio of ``wakeup-fd`` to
``sigwait``. ``--smoke`` runs one round and checks only that both work.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MECHANISMS = ("sigwait", "wakeup-fd")

CHILD = """\
import os, signal, sys, threading, time
from pathlib import Path

mechanism, out = sys.argv[1], Path(sys.argv[2])

def save():
    out.write_text(repr(time.monotonic()))

def sigwait_mechanism(save):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})

    def wait():
        signal.sigwait({signal.SIGTERM})
        save()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    threading.Thread(target=wait, daemon=True).start()
    return True

if mechanism == "sigwait":
    install = sigwait_mechanism
else:
    from coverage_wrapper.shutdown import save_on_sigterm as install
started = time.process_time()
assert install(save)
installed = time.process_time() - started
print(repr(installed), flush=True)
sys.stdin.read()
"""


def one_round(mechanism: str, work: Path) -> dict[str, float]:
    """Install ``mechanism`` in a fresh process, SIGTERM it, and time what follows."""
    out = work / f"{mechanism}.saved"
    out.unlink(missing_ok=True)
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, mechanism, str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        install_s = float(child.stdout.readline())
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=60)
        gone = time.monotonic()
    if code != -signal.SIGTERM:
        raise RuntimeError(f"{mechanism}: the process ended with {code}, not -SIGTERM")
    saved = float(out.read_text())
    return {
        "install_us": install_s * 1e6,
        "to_saved_ms": (saved - sent) * 1e3,
        "to_exit_ms": (gone - sent) * 1e3,
    }


def measure(rounds: int) -> dict[str, dict[str, dict[str, float]]]:
    """Best and median of each figure per mechanism, over interleaved rounds."""
    samples: dict[str, list[dict[str, float]]] = {m: [] for m in MECHANISMS}
    with tempfile.TemporaryDirectory() as work:
        for index in range(rounds):
            order = MECHANISMS if index % 2 == 0 else tuple(reversed(MECHANISMS))
            for mechanism in order:
                samples[mechanism].append(one_round(mechanism, Path(work)))
    return {
        mechanism: {
            figure: {
                "best": min(s[figure] for s in runs),
                "median": statistics.median(s[figure] for s in runs),
            }
            for figure in runs[0]
        }
        for mechanism, runs in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--smoke", action="store_true", help="one round: check that both work")
    args = parser.parse_args(argv)
    results = measure(1 if args.smoke else args.rounds)
    print(json.dumps(results, indent=2))
    if args.smoke:
        return 0
    base, new = results["sigwait"], results["wakeup-fd"]
    print(f"{'figure':<12} {'sigwait best/median':>22} {'wakeup-fd best/median':>24} {'ratio':>7}")
    for figure in base:
        ratio = new[figure]["median"] / base[figure]["median"]
        print(
            f"{figure:<12} {base[figure]['best']:>10.3f} / {base[figure]['median']:<9.3f}"
            f" {new[figure]['best']:>12.3f} / {new[figure]['median']:<9.3f} {ratio:>7.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
