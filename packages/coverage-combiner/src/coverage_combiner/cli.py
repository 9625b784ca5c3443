"""``lambda-coverage``: combine data files into reports from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import warnings
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, TextIO

from coverage_combiner.__about__ import __version__
from coverage_combiner.combine import CombineOptions, CombineResult, combine
from coverage_combiner.compare import load_previous
from coverage_combiner.errors import CombinerError, NoDataError
from coverage_combiner.outputs import (
    DEFAULT_FORMATS,
    FORMATS,
    Written,
    output_names,
    parse_formats,
    write_outputs,
)
from coverage_combiner.parallel import Stage, available_cpus
from coverage_combiner.reader import DEFAULT_MAX_BYTES
from coverage_combiner.remap import PathRemapper
from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE, KeyTemplate, normalize_prefix
from coverage_wrapper.untrusted_text import terminal_text

if TYPE_CHECKING:
    from tqdm import tqdm

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BELOW_THRESHOLD = 3
EXIT_PARTIAL = 4

EPILOG = f"""\
exit codes:
  {EXIT_OK}  success
  {EXIT_ERROR}  error (nothing usable was produced, or a report could not be made)
  {EXIT_USAGE}  usage error
  {EXIT_BELOW_THRESHOLD}  total coverage below --fail-under
  {EXIT_PARTIAL}  partial: some inputs were rejected, held data labelled for a function or
     version their key does not name, objects that are not data files sit among
     them, or measured paths name files outside the source folders (each listed
     with the reason); the rest was merged and reported
"""


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write YYYY-MM-DD") from None


def _formats(text: str) -> tuple[str, ...]:
    try:
        return parse_formats(text)
    except CombinerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _output_name(text: str) -> str:
    try:
        output_names(text)
    except CombinerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _key_template(text: str) -> KeyTemplate:
    try:
        return KeyTemplate.parse_template(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _DeprecatedVersion(argparse.Action):
    """``combine --version V``: still the function version filter, with a warning."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        # Said once the arguments are read, so that --quiet, wherever written, silences it.
        namespace.deprecated_version = True
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="lambda-coverage",
        description="Merge Lambda Coverage data files into one report.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "combine",
        help="merge data files from S3, folders or files and write reports",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    run.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="s3://bucket/prefix (a folder; s3://bucket/start* for every key that starts so), "
        "a folder or a file",
    )
    run.add_argument("--output", "-o", required=True, help="a folder, or s3://bucket/prefix")
    run.add_argument(
        "--format",
        type=_formats,
        default=",".join(DEFAULT_FORMATS),
        help=f"comma-separated, any of {', '.join(FORMATS)} (default: %(default)s)",
    )
    run.add_argument(
        "--name",
        type=_output_name,
        metavar="STEM",
        help="name every output after STEM (STEM.coverage, STEM.json, STEM-html, ...) so that "
        "runs can share one output folder",
    )
    run.add_argument(
        "--source-root",
        action="append",
        default=[],
        metavar="[FUNCTION=]PATH",
        help="where the functions' code is (repeat FUNCTION=PATH for one root per function)",
    )
    run.add_argument("--source-zip", metavar="ZIP", help="read the source from the deployment zip")
    run.add_argument(
        "--paths", action="append", default=[], metavar="FROM=TO", help="map a path prefix"
    )
    run.add_argument("--function", help="only this function")
    run.add_argument(
        "--function-version",
        dest="function_version",
        default="latest",
        metavar="V|latest|all",
        help="which deployed version per function (default: latest)",
    )
    # The filter's old name, easily taken for the tool's own --version.
    run.add_argument(
        "--version", dest="function_version", action=_DeprecatedVersion, help=argparse.SUPPRESS
    )
    run.add_argument(
        "--run-id",
        metavar="ID",
        help="only the lines this run measured (COVERAGE_RUN_ID, or the run id in the event: "
        "COVERAGE_RUN_ID_FIELD), found in the run=ID contexts of the functions' data files",
    )
    run.add_argument(
        "--key-template",
        type=_key_template,
        default=DEFAULT_KEY_TEMPLATE,
        metavar="TEMPLATE",
        help="the layout the functions wrote their keys in (their COVERAGE_S3_KEY_TEMPLATE; "
        "default: %(default)s)",
    )
    run.add_argument("--since", type=_day, help="only data from this day on (YYYY-MM-DD, UTC)")
    run.add_argument("--until", type=_day, help="only data up to this day (YYYY-MM-DD, UTC)")
    run.add_argument(
        "--fail-under",
        type=float,
        metavar="PCT",
        help="exit 3 below this total %% (default: fail_under of the coverage.py configuration)",
    )
    run.add_argument(
        "--no-unexecuted",
        dest="unexecuted",
        action="store_false",
        help="report only files that ran (by default every Python file of a function's folder "
        "given with --source-root that never ran is reported at 0%%, as coverage.py's source "
        "does, vendored packages left out)",
    )
    run.add_argument(
        "--rcfile",
        metavar="PATH",
        help="the coverage.py configuration to report with (default: the functions' own "
        ".coveragerc, setup.cfg, tox.ini or pyproject.toml, else the working folder's)",
    )
    run.add_argument(
        "--jobs", type=_positive, default=8, help="parallel fetches (default: %(default)s)"
    )
    run.add_argument(
        "--processes",
        type=_positive,
        default=None,
        metavar="N",
        help="processes that fetch and merge, this one included "
        f"(default: the CPUs this process may use, {available_cpus()} here)",
    )
    run.add_argument(
        "--max-bytes",
        type=_positive,
        default=DEFAULT_MAX_BYTES,
        help="reject inputs larger than this (default: %(default)s)",
    )
    run.add_argument(
        "--all-snapshots",
        action="store_true",
        help="read every snapshot, not only the newest per process (same result, slower)",
    )
    run.add_argument(
        "--allow-empty",
        action="store_true",
        help="write an empty report when no data is found (by default that is an error)",
    )
    run.add_argument("--json", action="store_true", help="print the JSON summary on stdout")
    run.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    run.add_argument(
        "--compare",
        metavar="PREVIOUS",
        help="an earlier JSON summary (a path or s3://bucket/key): show the change since then",
    )
    return parser


class Progress:
    """Progress on a terminal, drawn by tqdm; silent otherwise.

    Two bars, one after the other: ``listing`` (objects listed; no total is
    known yet), then ``merging`` (inputs merged of all chosen, with the count
    fetched beside it: fetches run ahead of the merge). Fetches report from
    worker threads, so updates hold a lock; tqdm redraws at most every
    ``interval`` seconds, and each bar's last state when it closes.
    """

    def __init__(self, stream: TextIO, enabled: bool, interval: float = 0.1) -> None:
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.interval = interval
        self._bar: tqdm[Any] | None = None
        self._fetched = 0
        self._lock = threading.Lock()

    def _open(self, stage: Stage, total: int | None) -> tqdm[Any]:
        # Imported on first use: a run with no terminal never pays for it.
        from tqdm import tqdm

        if self._bar is not None:
            self._bar.close()
        self._bar = tqdm(
            desc=stage, total=total, file=self.stream, mininterval=self.interval, unit=" files"
        )
        return self._bar

    def __call__(self, stage: Stage, done: int, total: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            bar = self._bar
            if stage == "listing":
                bar = bar if bar is not None and bar.desc == "listing" else self._open(stage, None)
            else:
                if bar is None or bar.desc != "merging":
                    bar = self._open("merging", total)
                if stage == "fetching":
                    self._fetched = done
                    bar.set_postfix_str(f"fetched {done}", refresh=False)
                    return
                bar.set_postfix_str(f"fetched {self._fetched}", refresh=False)
            bar.update(done - bar.n)

    def finish(self) -> None:
        """Close the bar, drawn as it ended."""
        with self._lock:
            if self._bar is not None:
                self._bar.close()
            self._bar = None


def _output_key_prefix(output: str) -> str | None:
    """The key prefix of an S3 output, so that its earlier outputs are never read as inputs."""
    if not output.startswith("s3://"):
        return None
    _, _, prefix = output.removeprefix("s3://").partition("/")
    try:
        return normalize_prefix(prefix) or None
    except ValueError:
        return None  # writing the outputs refuses it, naming the output


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if getattr(args, "deprecated_version", False) and not args.quiet:
        sys.stderr.write(
            "lambda-coverage: warning: combine --version is deprecated and will be removed: "
            "use --function-version (lambda-coverage --version prints the tool's version)\n"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = _run(args)
    _print_warnings(sys.stderr, caught, quiet=args.quiet)
    return code


def _print_warnings(err: TextIO, caught: list[warnings.WarningMessage], *, quiet: bool) -> None:
    """coverage.py's warnings as ours, once each (none when ``quiet``); others as Python shows them.

    coverage.py warns through :mod:`warnings` (``CoverageWarning``), which would
    print a raw source line and bypass ``--quiet``.
    """
    from coverage.exceptions import CoverageWarning

    said: set[str] = set()
    for caught_warning in caught:
        if not issubclass(caught_warning.category, CoverageWarning):
            warnings.warn_explicit(
                caught_warning.message,
                caught_warning.category,
                caught_warning.filename,
                caught_warning.lineno,
                source=caught_warning.source,
            )
        elif not quiet and str(caught_warning.message) not in said:
            said.add(str(caught_warning.message))
            text = f"lambda-coverage: warning: coverage.py: {caught_warning.message}"
            err.write(terminal_text(text) + "\n")


def _run(args: argparse.Namespace) -> int:
    """Combine and report as ``args`` say; return the exit code."""
    out, err = sys.stdout, sys.stderr
    progress = Progress(err, not args.quiet)
    try:
        previous = (args.compare, load_previous(args.compare)) if args.compare else None
        remap = PathRemapper.build(
            paths=args.paths, source_roots=args.source_root, source_zip=args.source_zip
        )
        result = combine(
            args.sources,
            CombineOptions(
                function=args.function,
                version=args.function_version,
                since=args.since,
                until=args.until,
                jobs=args.jobs,
                processes=args.processes,
                max_bytes=args.max_bytes,
                newest_snapshot_only=not args.all_snapshots,
                exclude_prefix=_output_key_prefix(args.output),
                exclude_folder=None if args.output.startswith("s3://") else args.output,
                allow_empty=args.allow_empty,
                key_template=args.key_template.text,
                run_id=args.run_id,
            ),
            progress=progress,
        )
        progress.finish()
        written = write_outputs(
            result,
            args.output,
            formats=args.format,
            remap=remap,
            name=args.name,
            previous=previous,
            rcfile=args.rcfile,
            unexecuted=args.unexecuted,
        )
    except NoDataError as exc:
        progress.finish()
        if exc.result is not None:
            _print_problems(err, exc.result, quiet=args.quiet)
        err.write(terminal_text(f"lambda-coverage: error: {exc}") + "\n")
        return EXIT_ERROR
    except (CombinerError, ValueError) as exc:
        progress.finish()
        err.write(terminal_text(f"lambda-coverage: error: {exc}") + "\n")
        return EXIT_ERROR
    result.warnings.extend(written.config.warnings)
    summary = written.summary
    if args.json:
        out.write(json.dumps({**summary, "outputs": written.outputs}, indent=2) + "\n")
    elif not args.quiet:
        _print_human(out, summary, written.outputs)
    _print_problems(err, result, quiet=args.quiet)
    for refused in summary["refused_paths"]:
        err.write(
            terminal_text(
                f"lambda-coverage: refused measured path {refused['path']!r} of "
                f"{refused['function'] or 'the data'}: {refused['reason']}"
            )
            + "\n"
        )
    partial = result.partial or bool(summary["refused_paths"])
    return _exit_code(args.fail_under, written, partial, err)


def _print_problems(err: TextIO, result: CombineResult, *, quiet: bool) -> None:
    """Warnings (unless ``quiet``), then every rejected input and other object, with why.

    An input that held data not its own is named even when ``quiet``: it makes
    the exit code partial, like a rejected one.
    """
    if not quiet:
        for warning in result.warnings:
            err.write(terminal_text(f"lambda-coverage: warning: {warning}") + "\n")
    else:
        for name, reason in result.foreign:
            err.write(terminal_text(f"lambda-coverage: warning: {name}: {reason}") + "\n")
    for name, reason in result.rejected:
        err.write(terminal_text(f"lambda-coverage: rejected {name}: {reason}") + "\n")
    for name, reason in result.skipped:
        err.write(terminal_text(f"lambda-coverage: skipped {name}: {reason}") + "\n")


def _exit_code(fail_under: float | None, written: Written, partial: bool, err: TextIO) -> int:
    """Errors first, then the threshold, then partial input.

    The threshold is ``--fail-under``, else the configuration's ``fail_under``,
    checked as coverage.py checks it (at the configured precision).
    """
    from coverage.exceptions import ConfigError
    from coverage.results import should_fail_under

    if written.missing_source is not None:
        err.write(terminal_text(f"lambda-coverage: error: {written.missing_source}") + "\n")
        return EXIT_ERROR
    totals = written.summary.get("totals")
    if fail_under is not None and not totals:
        err.write(
            "lambda-coverage: error: --fail-under needs the source to compute percentages: "
            "add --source-root or --source-zip\n"
        )
        return EXIT_ERROR
    # A configured fail_under applies where there are figures; only the flag
    # demands them (a data-only combine has none).
    named = "--fail-under"
    if fail_under is None and written.fail_under is not None:
        fail_under, named = written.fail_under, f"fail_under of {written.config.path}"
    if fail_under is not None and written.total is not None and totals:
        try:
            below = should_fail_under(written.total, fail_under, written.precision)
        except ConfigError as exc:  # not between 0 and 100
            err.write(terminal_text(f"lambda-coverage: error: {named}: {exc}") + "\n")
            return EXIT_USAGE
        if below:
            digits = max(written.precision, 2)
            err.write(
                terminal_text(
                    f"lambda-coverage: total coverage {written.total:.{digits}f}% is below "
                    f"{named} {fail_under:g}"
                )
                + "\n"
            )
            return EXIT_BELOW_THRESHOLD
    return EXIT_PARTIAL if partial else EXIT_OK


def _print_human(out: TextIO, summary: dict[str, Any], outputs: dict[str, str]) -> None:
    from coverage_combiner.summary import relative_to_here, render_table

    out.write(render_table(summary))
    out.write("\n")
    for kind, where in outputs.items():
        shown = where if where.startswith("s3://") else relative_to_here(where)
        out.write(terminal_text(f"{kind:<9} {shown}") + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
