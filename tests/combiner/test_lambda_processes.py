"""The combiner Lambda merges with as many processes as its memory holds, at the stated bound."""

from __future__ import annotations

import pytest

from coverage_combiner.lambda_handler import merge_processes
from coverage_wrapper.limits import MAX_INPUT_BYTES, combiner_processes, process_peak_mib


@pytest.mark.parametrize(
    ("memory_mb", "cpus", "expected"),
    [
        # The construct's default: one process holds an input of the 64 MiB cap
        # (798 MiB), two would not, whatever the CPUs.
        ("1024", 2, 1),
        ("1024", 6, 1),
        # Below one process's need, still one (the construct warns at synth).
        ("128", 2, 1),
        # 3,008 MB holds three such processes, not four.
        ("3008", 6, 3),
        # 10,240 MB holds twelve: the CPUs bound it.
        ("10240", 6, 6),
    ],
)
def test_processes_come_from_the_function_memory_and_the_bound(
    memory_mb: str, cpus: int, expected: int
) -> None:
    environ = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory_mb}

    chosen = merge_processes(environ, cpus=cpus)

    assert chosen == expected
    # Every process may hold the worst valid input at once, within the function's memory.
    assert chosen == 1 or chosen * process_peak_mib() * 2**20 <= int(memory_mb) * 1_000_000


def test_outside_lambda_the_combine_keeps_its_own_default() -> None:
    assert merge_processes({}, cpus=4) is None
    assert merge_processes({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, cpus=4) is None


def test_a_smaller_input_cap_lets_more_processes_fit() -> None:
    assert combiner_processes(3008, 8, MAX_INPUT_BYTES // 4) > combiner_processes(3008, 8)
