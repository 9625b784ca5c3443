"""What the combiner accepts in one data file, and the memory one input costs it.

The combiner reads these limits and the constructs size the combiner
function from them: the constructs depend on the wrapper, not on the
combiner, so the facts both need live here, once. The wrapper itself never
comes near them (the figures are in the combiner README's "Memory and time per input").
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "MAX_CLAIMED_LINES",
    "MAX_INPUT_BYTES",
    "MAX_LINE",
    "MEMORY_BASE_MIB",
    "MEMORY_PER_INPUT_BYTE",
    "MIN_COMBINER_MEMORY_MB",
    "combiner_memory_mb",
    "combiner_processes",
    "process_peak_mib",
]

#: The size cap of one data file (the combiner's ``--max-bytes`` default).
MAX_INPUT_BYTES: Final = 64 * 1024 * 1024

#: No source file is this long. A numbits blob of line n is n / 8 bytes, so a
#: small hostile file could otherwise claim a billion executed lines.
MAX_LINE: Final = 1 << 20

#: Executed lines one data file may claim in all, summed over its contexts and
#: files (its line data; branch data is bounded by its size: an arc is a row of
#: about 24 bytes). Line data merged into branch data costs one ``(-n, n)`` row
#: per claimed line in the data file written (about 0.6 µs and 40 bytes each),
#: so this bounds the time and the output of any one input. The largest real
#: data file measured claims 220,932 lines (38 times less): see the combiner
#: README's "Memory and time per input".
MAX_CLAIMED_LINES: Final = 1 << 23

#: The memory of a combine of one tiny file: the interpreter, coverage.py, boto3.
MEMORY_BASE_MIB: Final = 30
#: Peak memory per byte of one input of any valid shape, on top of the base (K).
MEMORY_PER_INPUT_BYTE: Final = 11

_MIB = 1024 * 1024


def process_peak_mib(max_input_bytes: int = MAX_INPUT_BYTES) -> int:
    """The most one merging process holds, in MiB, when every input may be ``max_input_bytes``.

    The input being merged costs K times its size; the bodies fetched and
    waiting to be merged hold at most ``max_input_bytes`` more (the fetch
    window's byte budget).
    """
    return math.ceil(MEMORY_BASE_MIB + (MEMORY_PER_INPUT_BYTE + 1) * max_input_bytes / _MIB)


def combiner_processes(memory_mb: int, cpus: int, max_input_bytes: int = MAX_INPUT_BYTES) -> int:
    """Merging processes that fit in a function of ``memory_mb`` MB with ``cpus`` CPUs (at least 1).

    Every process of a Lambda sandbox counts against the function's memory:
    each must be able to hold the worst valid input at once.
    """
    fits = memory_mb * 1_000_000 // (process_peak_mib(max_input_bytes) * _MIB)
    return max(1, min(cpus, fits))


#: The combiner function's memory is never below this (MB): CPU grows with memory.
MIN_COMBINER_MEMORY_MB: Final = 1024


def combiner_memory_mb(max_input_bytes: int = MAX_INPUT_BYTES) -> int:
    """The combiner function's default memory (MB): one process with the worst valid input.

    Rounded up to a multiple of 64 MB, and at least :data:`MIN_COMBINER_MEMORY_MB`.
    """
    needed = math.ceil(process_peak_mib(max_input_bytes) * _MIB / 1_000_000)
    return max(MIN_COMBINER_MEMORY_MB, -(-needed // 64) * 64)
