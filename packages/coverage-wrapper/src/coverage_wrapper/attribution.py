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
"""

from __future__ import annotations

from dataclasses import dataclass

from coverage_wrapper.keys import key_segment

#: Lines run while the function's module was imported (zero-code mode only).
INIT = "init"
#: Lines run by the handler's invocations (and by ``CoverageContext`` blocks).
INVOCATION = "invocation"

_RUN = "run="


def dynamic_context(phase: str, run_id: str | None) -> str:
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
    phase: str | None
    #: The run id as it appears in keys (:func:`coverage_wrapper.keys.key_segment`).
    run_id: str | None


def parse_context(context: str) -> Attribution:
    """Split a data file context into its static part, phase and run id."""
    static, _, dynamic = context.partition("|")
    phase: str | None = None
    run_id: str | None = None
    for part in dynamic.split(";") if dynamic else ():
        if part.startswith(_RUN):
            run_id = part[len(_RUN) :]
        elif part in (INIT, INVOCATION):
            phase = part
    return Attribution(static=static, phase=phase, run_id=run_id)
