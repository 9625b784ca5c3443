"""Combine: list the sources, fetch in parallel, validate, merge, choose versions.

This is the library's lower-level entry point; :mod:`coverage_combiner.outputs`
turns its result into reports, and :mod:`coverage_combiner.api` and the CLI
put the two together.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, TypeVar

from coverage_combiner.claims import ClaimCheck, read_key
from coverage_combiner.errors import NoDataError, SourceError
from coverage_combiner.inputs import Input, list_source, source_in_output
from coverage_combiner.merge import (
    Merged,
    VersionChoice,
    select_versions,
    split_context,
    version_order,
)
from coverage_combiner.object_names import key_of
from coverage_combiner.parallel import Stage, available_cpus, early_workers, merge_inputs
from coverage_combiner.reader import DEFAULT_MAX_BYTES
from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE, KeyTemplate, key_segment

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
R = TypeVar("R")

#: Called with (stage, done, total) as work progresses: stage is ``listing`` (objects
#: listed so far; total 0, not known yet), ``fetching`` or ``merging``. Fetching is
#: reported from the worker threads.
Progress = Callable[[Stage, int, int], None]


@dataclass(frozen=True)
class CombineOptions:
    """What to take from the sources.

    ``key_template`` is the layout the functions wrote their keys in (their
    ``COVERAGE_S3_KEY_TEMPLATE``); the date and function filters, the
    newest-snapshot choice and the identity of each input (the key is the
    identity: :mod:`coverage_combiner.claims`) read keys with it. A bad
    template raises ValueError.
    """

    function: str | None = None
    version: str = "latest"
    since: date | None = None
    until: date | None = None
    jobs: int = 8
    max_bytes: int = DEFAULT_MAX_BYTES
    #: Read only the newest snapshot of each process (the wrapper's snapshots
    #: are cumulative, so the result is the same, from far fewer files).
    newest_snapshot_only: bool = True
    #: Keys under this prefix are outputs of a combiner, never inputs.
    exclude_prefix: str | None = None
    #: Files under this local folder are outputs of a combiner, never inputs.
    exclude_folder: str | None = None
    #: Processes that fetch and merge, this one included (default: the CPUs this
    #: process may use). Few inputs, or a platform that cannot start processes,
    #: use one.
    processes: int | None = None
    #: Finding no data is an error (:class:`NoDataError`) unless this is set: a
    #: CI gate pointed at the wrong prefix must not pass on an empty report.
    allow_empty: bool = False
    #: The layout of the data files' keys.
    key_template: str = DEFAULT_KEY_TEMPLATE
    #: Only the lines this run measured (``COVERAGE_RUN_ID``, or the event's run id),
    #: wherever they landed: the ``run=`` contexts of the functions' own files.
    run_id: str | None = None

    def __post_init__(self) -> None:
        KeyTemplate.parse_template(self.key_template)


@dataclass
class CombineResult:
    """The merged data and everything worth telling about how it was made."""

    merged: Merged
    versions: VersionChoice
    rejected: list[tuple[str, str]] = field(default_factory=list)
    #: Objects under a source that are not data files, with the reason.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: The wrapper's own health probes found among the sources (expected, not a problem).
    probes: int = 0
    #: Files plainly not data (sources, reports, configuration), with the reason:
    #: expected beside coverage.py's data files, not a problem.
    not_data: list[tuple[str, str]] = field(default_factory=list)
    superseded: int = 0
    #: Inputs byte-identical to an earlier one (their data is in, merged once).
    duplicates: int = 0
    #: Inputs that held data labelled for a function or version their key does not
    #: name, with what was not counted (the rest of each was merged).
    foreign: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """Some inputs could not be merged, or held data not their own, or something else
        sits among the data files."""
        return bool(self.rejected or self.skipped or self.foreign)


def combine(
    sources: Sequence[str],
    options: CombineOptions | None = None,
    progress: Progress | None = None,
    *,
    s3: S3Client | None = None,
) -> CombineResult:
    """Merge every data file of ``sources`` (``s3://bucket/prefix``, folders, files).

    ``s3`` is the client for S3 sources (default: boto3's own configuration).
    """
    options = options or CombineOptions()
    report = progress or (lambda stage, done, total: None)
    processes = options.processes or available_cpus()
    # Workers start up while the sources are listed.
    with early_workers(processes) as started:
        chosen, listed = _list(sources, options, report, s3)
        merger, rejected, foreign = merge_inputs(
            chosen,
            jobs=options.jobs,
            max_bytes=options.max_bytes,
            processes=processes,
            report=report,
            # Other processes fetch with boto3's own configuration, not with a client passed here.
            portable=s3 is None,
            started=started,
        )
    try:
        merged = merger.result()
        duplicates = merger.duplicates
    finally:
        merger.close()
    merged.inputs.sort()
    if options.function is not None:
        merged = _only_function(merged, options.function)
    merged, versions = select_versions(merged, options.version)
    foreign.sort()
    result = CombineResult(
        merged=merged,
        versions=versions,
        rejected=sorted(rejected),
        skipped=listed.skipped,
        probes=listed.probes,
        not_data=listed.not_data,
        duplicates=duplicates,
        superseded=listed.superseded,
        foreign=foreign,
        warnings=[f"{spec}: no data file there" for spec in listed.empty]
        + [f"{name}: {why}" for name, why in foreign]
        + _version_warnings(versions, options.version)
        + _kind_warnings(merged),
    )
    if not merged.files() and not options.allow_empty:
        raise NoDataError(_nothing_found(sources, options, len(listed.inputs), result), result)
    return result


@dataclass
class _Listed:
    """What the sources held besides the inputs chosen."""

    inputs: list[Input]
    skipped: list[tuple[str, str]]
    probes: int
    superseded: int
    #: Sources that hold no data file at all, when others do (named, not passed over).
    empty: list[str]
    not_data: list[tuple[str, str]]


def _list(
    sources: Sequence[str], options: CombineOptions, report: Progress, s3: S3Client | None
) -> tuple[list[Input], _Listed]:
    """List every source and choose the inputs to merge."""
    inputs: list[Input] = []
    skipped: list[tuple[str, str]] = []
    not_data: list[tuple[str, str]] = []
    empty: list[str] = []
    probes = 0
    for spec in sources:
        inside = source_in_output(
            spec, exclude_prefix=options.exclude_prefix, exclude_folder=options.exclude_folder
        )
        if inside is not None:
            raise SourceError(inside)
        listing = list_source(
            spec,
            exclude_prefix=options.exclude_prefix,
            exclude_folder=options.exclude_folder,
            client=s3,
            on_page=functools.partial(
                _listed, report, len(inputs) + len(skipped) + len(not_data) + probes
            ),
        )
        inputs.extend(listing.inputs)
        skipped.extend(listing.skipped)
        not_data.extend(listing.not_data)
        probes += listing.probes
        if not listing.inputs and len(sources) > 1:
            empty.append(spec)
    chosen, superseded = _choose(inputs, options)
    return chosen, _Listed(inputs, skipped, probes, superseded, empty, not_data)


def _nothing_found(
    sources: Sequence[str], options: CombineOptions, listed: int, result: CombineResult
) -> str:
    """Say where nothing was found, through which filters, and what else was there."""
    filters = [
        f"{flag} {value}"
        for flag, value in (
            ("--function", options.function),
            ("--since", options.since),
            ("--until", options.until),
            ("--run-id", options.run_id),
        )
        if value is not None
    ]
    if options.version not in ("latest", "all"):
        filters.append(f"--function-version {options.version}")
    found = f"{listed} data file(s) listed"
    if result.rejected:
        found += f", {len(result.rejected)} rejected"
    if result.skipped:
        found += f", {len(result.skipped)} other object(s)"
    if result.not_data:
        found += f", {len(result.not_data)} file(s) not coverage data"
    return (
        f"no coverage data under {', '.join(sources)}"
        + (f" with {' '.join(filters)}" if filters else "")
        + f" ({found}); check the source and the filters, "
        "or pass --allow-empty to write an empty report on purpose"
    )


def _kind_warnings(merged: Merged) -> list[str]:
    """Name the functions measured without branches when others were measured with them."""
    if not merged.has_arcs:
        return []
    functions = {split_context(context)[0] for context in merged.contexts()}
    measured = {split_context(context)[0] for context in {c for c, _ in merged.branch_arcs}}
    lines_only = sorted(functions - measured)
    if not lines_only:
        return []
    return [
        f"{', '.join(lines_only)}: measured without branches (COVERAGE_BRANCH_COVERAGE=false); "
        "their lines count as measured, their branches as not taken: measure them with "
        "branches for branch figures"
    ]


def _version_warnings(versions: VersionChoice, asked: str) -> list[str]:
    """Say what the default dropped; for an explicit version, only what it left empty."""
    warnings = []
    for function, dropped in sorted(versions.dropped.items()):
        kept = versions.kept[function]
        every = ", ".join(sorted(kept + dropped, key=version_order))
        if asked == "latest":
            warnings.append(
                f"{function}: data from versions {every}; reporting {', '.join(kept)} only "
                "(--function-version latest); use --function-version all to merge them or "
                "--function-version V to choose"
            )
        elif not kept:
            warnings.append(
                f"{function}: no data of version {asked} (it has {', '.join(dropped)}); "
                "nothing is reported for it"
            )
    return warnings


def _listed(report: Progress, before: int, listed: int) -> None:
    report("listing", before + listed, 0)


def _choose(inputs: list[Input], options: CombineOptions) -> tuple[list[Input], int]:
    """Apply the key-level filters; keep the newest snapshot per process. Count the rest.

    Each input chosen carries the check of its claims: the identity its key
    gives, and the run asked for (:class:`~coverage_combiner.claims.ClaimCheck`).
    A key the template cannot parse passes the date filter on its object's
    date and the function filter (the contexts decide later).

    With a run id, a process's newest snapshot is read whatever run its key
    names: snapshots are cumulative, so it holds every run the process
    served, even one whose own snapshot never reached the bucket. The newest
    snapshot under the run's own key is read as well, for data that labels
    its run only in the key.
    """
    template = KeyTemplate.parse_template(options.key_template)
    wanted = key_segment(options.function) if options.function is not None else None
    run = key_segment(options.run_id) if options.run_id is not None else None
    checks: dict[ClaimCheck, ClaimCheck] = {}
    # Per writing process: the highest sequence number and its input (and,
    # with a run id, the same under that run's keys). The parsed key itself
    # is not kept: with tens of thousands of inputs it would outweigh them.
    newest: dict[tuple[str, str, int], tuple[int, Input]] = {}
    newest_of_run: dict[tuple[str, str, int], tuple[int, Input]] = {}
    chosen: list[Input] = []
    candidates = 0
    for listed in inputs:
        key, owner = read_key(template, key_of(listed.name))
        day = key.day if key and key.day else (listed.modified.date() if listed.modified else None)
        function = key.function if key else owner
        if _outside(day, options) or (function and wanted is not None and function != wanted):
            continue
        claims = ClaimCheck.of(key, run, owner)
        # One check object per identity: inputs share it, and a worker receives it once per chunk.
        item = (
            listed if claims is None else replace(listed, claims=checks.setdefault(claims, claims))
        )
        if key is None or not options.newest_snapshot_only:
            chosen.append(item)
            continue
        candidates += 1
        writer = (sys.intern(key.function), key.container, key.pid)
        _keep_newest(newest, writer, key.seq, item)
        if run is not None and key.run_id == run:
            _keep_newest(newest_of_run, writer, key.seq, item)
    kept = {id(item): item for _, item in (*newest.values(), *newest_of_run.values())}
    chosen.extend(kept.values())
    chosen.sort(key=lambda i: i.name)
    return chosen, candidates - len(kept)


def _keep_newest(
    newest: dict[tuple[str, str, int], tuple[int, Input]],
    writer: tuple[str, str, int],
    seq: int,
    item: Input,
) -> None:
    current = newest.get(writer)
    if current is None or seq > current[0]:
        newest[writer] = (seq, item)


def _outside(day: date | None, options: CombineOptions) -> bool:
    if day is None:
        return False
    return bool((options.since and day < options.since) or (options.until and day > options.until))


def _only_function(merged: Merged, function: str) -> Merged:
    return merged.only({c for c in merged.contexts() if split_context(c)[0] == function})
