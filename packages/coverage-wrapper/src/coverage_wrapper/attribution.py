"""What each measured line is attributed to: init or invocation, and which run.

Every data file's contexts are ``static|dynamic`` in coverage.py's terms: the
static part is ``function@version`` (:func:`coverage_wrapper.identity.context_label`),
the dynamic part names the phase (``init``: module import before the first
invocation, in zero-code mode; ``invocation``: the handler's calls) and, when
one is set, the run id: ``invocation;run=ci-1234``.

The dynamic context is switched only right after coverage.py starts, at the
outermost scope, before any measured code runs in that start. That keeps it
exact on every core: coverage.py's ``sysmon`` core stops reporting a line once
seen (so a switch in the middle of a measurement would miss every line seen
before it), but its ``start()`` re-arms every event with
``sys.monitoring.restart_events()``, so after a start each line is reported
again under the new context. The wrapper starts coverage.py at each outermost
scope anyway; a switch costs one flush of the in-memory data, and it happens
only when the label changes (the first invocation, a new run id).

The run id is ``COVERAGE_RUN_ID``, or per invocation the value found in the
event at ``COVERAGE_RUN_ID_FIELD`` (:func:`run_id_in_event`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from coverage_wrapper.keys import key_segment

#: What lines are attributed to: see :data:`INIT` and :data:`INVOCATION`.
Phase = Literal["init", "invocation"]
#: Lines run while the function's module was imported (zero-code mode only).
INIT: Final[Phase] = "init"
#: Lines run by the handler's invocations (and by ``CoverageContext`` blocks).
INVOCATION: Final[Phase] = "invocation"

_PHASES: Final[dict[str, Phase]] = {INIT: INIT, INVOCATION: INVOCATION}
_RUN = "run="

#: The longest run id taken from an event: it becomes part of S3 keys (at most
#: 1,024 bytes in all) and of every context label.
MAX_RUN_ID_LENGTH = 128


def dynamic_context(phase: Phase, run_id: str | None) -> str:
    """The dynamic context of lines run in ``phase`` for ``run_id``."""
    if run_id is None:
        return phase
    return f"{phase};{_RUN}{key_segment(run_id)}"


@dataclass(frozen=True)
class Attribution:
    """A data file context read back: whose lines, in which phase, for which run."""

    #: The static context, ``function@version`` (or whatever other tool wrote).
    static: str
    #: ``init``, ``invocation``, or None for data written without a phase.
    phase: Phase | None
    #: The run id as it appears in keys (:func:`coverage_wrapper.keys.key_segment`).
    run_id: str | None


def parse_context(context: str) -> Attribution:
    """Split a data file context into its static part, phase and run id."""
    static, _, dynamic = context.partition("|")
    phase: Phase | None = None
    run_id: str | None = None
    for part in dynamic.split(";") if dynamic else ():
        if part.startswith(_RUN):
            run_id = part[len(_RUN) :]
        elif part in _PHASES:
            phase = _PHASES[part]
    return Attribution(static=static, phase=phase, run_id=run_id)


def run_id_in_event(event: object, path: Sequence[str]) -> object:
    """The value at ``path`` in ``event``, or None where the event has nothing there.

    Each step is a key of a mapping (the exact key first, then the first key
    equal to it ignoring case: HTTP header names are case-insensitive, and
    API Gateway's REST API passes them as the client wrote them while its
    HTTP API and ALB lower-case them) or, in a list, a 0-based index. A list
    found at the end (``multiValueHeaders``) gives its first item.
    """
    found: object = event
    for step in path:
        if isinstance(found, Mapping):
            if step in found:
                found = found[step]
            else:
                folded = step.casefold()
                found = next(
                    (v for k, v in found.items() if isinstance(k, str) and k.casefold() == folded),
                    None,
                )
        elif isinstance(found, list) and step.isdigit():
            index = int(step)
            found = found[index] if index < len(found) else None
        else:
            return None
        if found is None:
            return None
    if isinstance(found, list):
        return found[0] if found else None
    return found


def run_id_problem(value: object) -> str | None:
    """Why ``value`` (found in an event) cannot be a run id, or None when it can.

    A run id from an event is used as it is, so it must already be a key
    segment (:func:`coverage_wrapper.keys.key_segment` leaves it unchanged):
    letters, digits and ``. _ = + -``, no leading or trailing dot, at most
    :data:`MAX_RUN_ID_LENGTH` characters. The reason never repeats the value:
    a field pointed at the wrong header could hold a credential.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return f"is a {type(value).__name__}, not text"
    text = str(value)
    if len(text) > MAX_RUN_ID_LENGTH:
        return f"has {len(text)} characters, more than {MAX_RUN_ID_LENGTH}"
    if not text:
        return "is empty"
    if key_segment(text) == text:
        return None
    unsafe = sorted({ch for ch in text if ch != "." and key_segment(ch) != ch})
    if not unsafe:
        return "starts or ends with '.'; a run id has no '.' at either end"
    shown = " ".join(repr(ch) for ch in unsafe[:5])
    return f"has the characters {shown}; a run id uses only A-Z a-z 0-9 . _ = + -"
