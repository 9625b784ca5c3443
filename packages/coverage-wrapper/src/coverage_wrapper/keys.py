"""The S3 key contract: where data files go, and how a key is read back.

The one definition of the layout. The wrapper renders keys with it, the
combiner parses them (date, function and run filters, the newest snapshot of
each process), and the CDK constructs grant each function the IAM object
pattern of its own keys. A key template is text with fields in braces::

    {prefix}{yyyy}/{mm}/{dd}/{function}/{version}/{container}-{pid}-{seq}.coverage

Fields: ``{prefix}`` (the ``COVERAGE_S3_PREFIX`` folder), ``{yyyy} {mm} {dd}
{hh}`` (UTC, zero-padded), ``{function} {version} {region} {run_id}
{container}`` (free text, written through :func:`key_segment`), ``{pid}`` and
``{seq}`` (numbers; ``{seq}`` is zero-padded to six digits).

A template is valid when every key it renders can be parsed back into the
fields it was rendered from, and when the IAM pattern of one function's keys
matches no other function's keys. :class:`KeyTemplate` checks these rules:

1. only the fields above, each at most once, written bare (no ``{pid:05d}``);
2. it starts with ``{prefix}``;
3. it has ``{function}``, ``{container}``, ``{pid}`` and ``{seq}``;
4. the text between fields uses only ``A-Z a-z 0-9 . _ = + -`` and ``/``;
5. it ends in ``.coverage``; no path segment is empty;
6. before ``{function}`` come only text and fixed-width fields
   (``{yyyy} {mm} {dd} {hh}``), and ``/`` follows it;
7. at most one free-text field per ``/``-separated segment;
8. ``{pid}`` and ``{seq}`` are separated from their neighbours by text with
   a character that is not a digit.

The health check's write probe goes inside the same grant:
:meth:`KeyTemplate.probe_key` puts it in a ``_health/`` folder under the
function's own folder, named ``{container}-{pid}.probe`` (never
``.coverage``, so it is never read as data); :func:`is_probe_key` recognises it.

Stdlib only and cheap to import (the wrapper imports it at cold start): no
dataclasses, and the parsing expression is compiled when a key is first parsed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date, datetime

#: Where the wrapper writes data files (``COVERAGE_S3_PREFIX``).
DEFAULT_S3_PREFIX: Final = "coverage/"
#: Where a combiner writes its reports: a sibling of the raw prefix, never inside it.
DEFAULT_COMBINED_PREFIX: Final = "coverage-combined/"
#: Every data file's key ends in this.
DATA_SUFFIX: Final = ".coverage"
#: The layout the wrapper writes unless ``COVERAGE_S3_KEY_TEMPLATE`` says otherwise.
DEFAULT_KEY_TEMPLATE: Final = (
    "{prefix}{yyyy}/{mm}/{dd}/{function}/{version}/{container}-{pid}-{seq}.coverage"
)

#: The folder, inside a function's own key folder, that holds its health probes.
PROBE_FOLDER: Final = "_health"
#: Every probe key ends in this; it is not :data:`DATA_SUFFIX`: a probe is no data file.
PROBE_SUFFIX: Final = ".probe"

#: Digits of a fixed width, by field.
FIXED_WIDTH_FIELDS: Final = {"yyyy": 4, "mm": 2, "dd": 2, "hh": 2}
#: Free text, written through :func:`key_segment`.
TEXT_FIELDS: Final = ("function", "version", "region", "run_id", "container")
#: Non-negative numbers of any width.
NUMBER_FIELDS: Final = ("pid", "seq")
#: Every field a template may use, in the order the documentation lists them.
KEY_FIELDS: Final = ("prefix", *FIXED_WIDTH_FIELDS, *TEXT_FIELDS, *NUMBER_FIELDS)
#: Without these a key would not say whose data it is, or two flushes could share a key.
REQUIRED_FIELDS: Final = ("function", "container", "pid", "seq")
#: What ``{run_id}`` renders when no run id is set.
NO_RUN_ID: Final = "_"

_SEGMENT_CHARS = "A-Za-z0-9._=+-"
_UNSAFE = re.compile(f"[^{_SEGMENT_CHARS}]")
_LITERAL = re.compile(f"[{_SEGMENT_CHARS}/]*")
_FIELD = re.compile(r"\{([^{}]*)\}")
_FIELD_LIST = " ".join("{" + name + "}" for name in KEY_FIELDS)


def key_segment(value: str) -> str:
    """Make ``value`` safe as one path segment of a key (``$LATEST`` becomes ``LATEST``).

    Characters outside ``A-Z a-z 0-9 . _ = + -`` become ``_``; leading and
    trailing dots are dropped (no ``.`` or ``..`` segments); an empty result is ``_``.
    """
    cleaned = _UNSAFE.sub("_", value.replace("$", ""))
    return cleaned.strip(".") or "_"


def normalize_prefix(text: str) -> str:
    """A key prefix as a folder: ``/coverage`` → ``coverage/``, ``""`` stays ``""``.

    Surrounding whitespace and leading ``/`` are dropped and a trailing ``/``
    is added, so ``coverage`` never also means ``coverage-combined/``.
    Raises ValueError for a ``..`` segment.
    """
    folder = text.strip().lstrip("/")
    if ".." in folder.split("/"):
        raise ValueError(
            f"key prefix {text!r} has a '..' segment: S3 keys have no parent folder; "
            f"write the folder itself, such as {DEFAULT_S3_PREFIX!r}"
        )
    return folder if not folder or folder.endswith("/") else folder + "/"


def is_probe_key(key: str) -> bool:
    """Whether ``key`` (or a local path) is one of the wrapper's health probes.

    A probe is ``<folder>/_health/<name>.probe``: inside a function's folder
    (:meth:`KeyTemplate.probe_key`), or directly under the prefix, where
    earlier versions of the wrapper wrote it.
    """
    folder, _, name = key.rpartition("/")
    return name.endswith(PROBE_SUFFIX) and folder.rpartition("/")[2] == PROBE_FOLDER


class KeyTemplateError(ValueError):
    """A key template breaks one of the rules; ``reason`` names the rule and the fix."""

    def __init__(self, template: str, reason: str) -> None:
        super().__init__(f"key template {template!r} is not valid: {reason}")
        self.template = template
        self.reason = reason


class KeyFields(NamedTuple):
    """The values a key is rendered from (before :func:`key_segment`)."""

    prefix: str
    when: datetime
    function: str
    version: str
    region: str
    container: str
    pid: int
    seq: int
    #: ``None`` renders as ``_``.
    run_id: str | None = None


class ParsedKey(NamedTuple):
    """What a key says about its data file, as written into the key.

    Fields the template does not have are ``None``; ``day`` needs all of
    ``{yyyy}``, ``{mm}`` and ``{dd}``. ``prefix`` is everything before the
    template's own part (a folder path, or ``""``).
    """

    prefix: str
    function: str
    container: str
    pid: int
    seq: int
    day: date | None = None
    hour: int | None = None
    version: str | None = None
    region: str | None = None
    run_id: str | None = None


#: Parsed templates by text: a template is parsed once per process, however often it is used.
_TEMPLATES: dict[str, KeyTemplate] = {}
_MAX_CACHED_TEMPLATES = 64


class KeyTemplate:
    """A valid key template: renders keys, parses them back, and gives a function's IAM pattern.

    ``KeyTemplate(text)`` raises :class:`KeyTemplateError` (a ValueError)
    naming the broken rule and the fix; see the module documentation for the
    rules. Instances are immutable and compare by their text.
    """

    __slots__ = ("_matcher", "_owner_matcher", "_parts", "fields", "text")

    text: str
    #: The fields the template uses.
    fields: frozenset[str]
    #: ``(is_field, value)`` in order: a field name, or literal text.
    _parts: tuple[tuple[bool, str], ...]
    _matcher: re.Pattern[str] | None
    _owner_matcher: re.Pattern[str] | None

    def __init__(self, text: str) -> None:
        parts = _validated_parts(text)
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "fields", frozenset(v for is_field, v in parts if is_field))
        object.__setattr__(self, "_matcher", None)
        object.__setattr__(self, "_owner_matcher", None)

    @classmethod
    def parse_template(cls, text: str) -> KeyTemplate:
        """The template ``text``, validated once per process (:class:`KeyTemplateError` if not)."""
        template = _TEMPLATES.get(text)
        if template is None:
            template = cls(text)
            if len(_TEMPLATES) >= _MAX_CACHED_TEMPLATES:
                _TEMPLATES.clear()
            _TEMPLATES[text] = template
        return template

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"KeyTemplate is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyTemplate) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"KeyTemplate({self.text!r})"

    def render(self, fields: KeyFields) -> str:
        """The key for ``fields``: the prefix as a folder, free text through :func:`key_segment`.

        ``pid`` and ``seq`` must not be negative.
        """
        if fields.pid < 0 or fields.seq < 0:
            raise ValueError(
                f"pid={fields.pid} and seq={fields.seq} must not be negative: "
                "a key's numbers are parsed as digits"
            )
        values = {
            "prefix": normalize_prefix(fields.prefix),
            **_fixed_width_values(fields.when),
            "function": key_segment(fields.function),
            "version": key_segment(fields.version),
            "region": key_segment(fields.region),
            "run_id": key_segment(fields.run_id or NO_RUN_ID),
            "container": key_segment(fields.container),
            "pid": str(fields.pid),
            "seq": f"{fields.seq:06d}",
        }
        return "".join(values[value] if is_field else value for is_field, value in self._parts)

    def parse(self, key: str) -> ParsedKey | None:
        """The fields of ``key``, or None when this template could not have rendered it.

        ``{prefix}`` matches any leading folder path (the prefix a key was
        written under need not be known). A date or hour that does not exist
        does not fit.
        """
        matcher = self._matcher
        if matcher is None:
            matcher = _matcher(self._parts)
            object.__setattr__(self, "_matcher", matcher)
        match = matcher.fullmatch(key)
        if match is None:
            return None
        found = match.groupdict()
        day = None
        if {"yyyy", "mm", "dd"} <= self.fields:
            from datetime import date

            try:
                day = date(int(found["yyyy"]), int(found["mm"]), int(found["dd"]))
            except ValueError:
                return None
        hour = None
        if "hh" in self.fields:
            hour = int(found["hh"])
            if hour > 23:
                return None
        return ParsedKey(
            prefix=found["prefix"],
            function=found["function"],
            container=found["container"],
            pid=int(found["pid"]),
            seq=int(found["seq"]),
            day=day,
            hour=hour,
            version=found.get("version"),
            region=found.get("region"),
            run_id=found.get("run_id"),
        )

    def owner(self, key: str) -> str | None:
        """The function whose folder holds ``key``, as its grant sees it; None if none can tell.

        A function may write anything under its own folder
        (:meth:`iam_object_pattern`), including a key that spells another
        function's layout further down (``.../fn-a/7/2026/01/15/fn-b/...``),
        which :meth:`parse`, knowing no prefix, reads as that other
        function's. The owner is read at the *first* place the text and
        fixed-width fields before ``{function}`` fit, so what a function
        writes inside its folder cannot move it. Templates with nothing
        between ``{prefix}`` and ``{function}`` give no such place: None.
        A prefix that itself looks like the date folders (``2026/01/15/x/``)
        would be read as the owner's place: choose prefixes that do not.
        """
        matcher = self._owner_matcher
        if matcher is None:
            head = self._parts[1 : [v for _, v in self._parts].index("function")]
            if not head:
                return None
            pieces = [
                (f"[0-9]{{{FIXED_WIDTH_FIELDS[value]}}}" if is_field else re.escape(value))
                for is_field, value in head
            ]
            matcher = re.compile(
                "(?:.*?/)??" + "".join(pieces) + f"(?P<function>[{_SEGMENT_CHARS}]+)/", re.DOTALL
            )
            object.__setattr__(self, "_owner_matcher", matcher)
        found = matcher.match(key)
        return None if found is None else found["function"]

    def iam_object_pattern(self, prefix: str, function: str) -> str:
        """The S3 object pattern (ARN suffix) of every key ``function`` writes under ``prefix``.

        ``?`` stands for each character of a fixed-width field before
        ``{function}``, ``*`` for everything after the function's segment,
        so the pattern matches no other function's keys (IAM's ``*`` also
        matches ``/``; ``?`` is exactly one character). ``function`` is the
        name as it is written into keys, ``key_segment(name)``, which is the
        name itself for every Lambda function name; a deploy-time token (CDK)
        is inserted as it is.
        """
        if not function or any(c in function for c in "*?/"):
            raise ValueError(
                f"function {function!r} cannot name one function's keys in an IAM pattern: "
                "pass the function's name (no '*', '?' or '/')"
            )
        folder = normalize_prefix(prefix)
        if "*" in folder or "?" in folder:
            raise ValueError(
                f"key prefix {prefix!r} has '*' or '?', which IAM reads as wildcards: the "
                "grant would reach other keys; choose a prefix without them"
            )
        unknown = {name: "?" * width for name, width in FIXED_WIDTH_FIELDS.items()}
        # Rule 6: a "/" follows {function}, so "*" cannot reach another function's folder.
        return self._up_to_function(folder, unknown) + function + "/*"

    def probe_key(
        self, *, prefix: str, when: datetime, function: str, container: str, pid: int
    ) -> str:
        """The key of the health check's write probe: inside ``function``'s own folder.

        ``{folder of function}/_health/{container}-{pid}.probe``, with the
        fields before ``{function}`` rendered as :meth:`render` does, so
        :meth:`iam_object_pattern` of ``function`` matches it and no other
        function's pattern does. It does not end in :data:`DATA_SUFFIX`, so
        :meth:`parse` never reads it as a data file; :func:`is_probe_key` does.
        """
        head = self._up_to_function(normalize_prefix(prefix), _fixed_width_values(when))
        name = f"{key_segment(container)}-{pid}{PROBE_SUFFIX}"
        return f"{head}{key_segment(function)}/{PROBE_FOLDER}/{name}"

    def _up_to_function(self, folder: str, fixed: dict[str, str]) -> str:
        """The template's text before ``{function}``: ``folder``, then text and ``fixed`` fields.

        Rule 6 leaves only literal text and fixed-width fields there.
        """
        pieces = [folder]
        for is_field, value in self._parts[1:]:
            if not is_field:
                pieces.append(value)
            elif value == "function":
                break
            else:
                pieces.append(fixed[value])
        return "".join(pieces)


def _fixed_width_values(when: datetime) -> dict[str, str]:
    """The fixed-width fields (:data:`FIXED_WIDTH_FIELDS`) of a key written at ``when`` (UTC)."""
    return {
        "yyyy": f"{when.year:04d}",
        "mm": f"{when.month:02d}",
        "dd": f"{when.day:02d}",
        "hh": f"{when.hour:02d}",
    }


def _validated_parts(text: str) -> tuple[tuple[bool, str], ...]:
    """Split ``text`` into fields and literal text, checking every rule (see the module)."""
    parts = _checked_parts(text)
    if not parts or parts[0] != (True, "prefix"):
        raise KeyTemplateError(
            text,
            "it must start with {prefix} (the COVERAGE_S3_PREFIX folder, which may be empty); "
            "put {prefix} first",
        )
    present = {value for is_field, value in parts if is_field}
    missing = [name for name in REQUIRED_FIELDS if name not in present]
    if missing:
        raise KeyTemplateError(
            text,
            f"it lacks {' '.join('{' + m + '}' for m in missing)}: every key needs {{function}} "
            "(whose data it is) and {container}, {pid} and {seq} (so that no two flushes "
            "write the same key)",
        )
    if parts[-1][0] or not parts[-1][1].endswith(DATA_SUFFIX):
        raise KeyTemplateError(
            text, f"it must end in {DATA_SUFFIX}: the combiner reads only such keys"
        )
    segments = _segments(parts[1:])
    if any(not segment for segment in segments):
        raise KeyTemplateError(
            text,
            "it has an empty path segment ('//', or '/' right after {prefix}, which already "
            "ends in '/'); remove the extra '/'",
        )
    _check_function(text, segments)
    for segment in segments:
        _check_segment(text, segment)
    return parts


def _checked_parts(text: str) -> tuple[tuple[bool, str], ...]:
    """Rules 1 and 4: known fields, each once and bare; only safe characters between them."""
    parts: list[tuple[bool, str]] = []
    position = 0
    for found in _FIELD.finditer(text):
        if found.start() > position:
            parts.append((False, text[position : found.start()]))
        parts.append((True, found.group(1)))
        position = found.end()
    if position < len(text):
        parts.append((False, text[position:]))
    seen: set[str] = set()
    for is_field, value in parts:
        if not is_field:
            if not _LITERAL.fullmatch(value):
                bad = "".join(sorted(set(_LITERAL.sub("", value))))
                raise KeyTemplateError(
                    text,
                    f"the text {value!r} has {bad!r}: between fields use only letters, digits, "
                    "'.', '_', '=', '+', '-' and '/' (no braces, spaces or '*')",
                )
        elif value not in KEY_FIELDS:
            if ":" in value or "!" in value:
                raise KeyTemplateError(
                    text,
                    f"{{{value}}} has a format or conversion: write the field bare "
                    "(the wrapper formats each field itself)",
                )
            raise KeyTemplateError(
                text, f"{{{value}}} is not a field; the fields are {_FIELD_LIST}"
            )
        elif value in seen:
            raise KeyTemplateError(text, f"{{{value}}} appears twice; use each field at most once")
        else:
            seen.add(value)
    return tuple(parts)


def _check_segment(text: str, segment: list[tuple[bool, str]]) -> None:
    """Rules 7 and 8: one free-text field, and numbers kept apart by a non-digit."""
    text_fields = [v for is_field, v in segment if is_field and v in TEXT_FIELDS]
    if len(text_fields) > 1:
        raise KeyTemplateError(
            text,
            f"{' and '.join('{' + f + '}' for f in text_fields)} share a path segment, so a "
            "key could be read more than one way; put a '/' between them",
        )
    for index, (is_field, value) in enumerate(segment):
        if not (is_field and value in NUMBER_FIELDS):
            continue
        for neighbour in (index - 1, index + 1):
            if 0 <= neighbour < len(segment) and not _separates(segment[neighbour]):
                raise KeyTemplateError(
                    text,
                    f"{{{value}}} needs text with a non-digit (such as '-') between it and its "
                    "neighbour, or the digits could be split more than one way",
                )


def _segments(parts: Sequence[tuple[bool, str]]) -> list[list[tuple[bool, str]]]:
    """The ``/``-separated path segments of the template after ``{prefix}``."""
    segments: list[list[tuple[bool, str]]] = [[]]
    for is_field, value in parts:
        if is_field:
            segments[-1].append((True, value))
            continue
        pieces = value.split("/")
        for number, piece in enumerate(pieces):
            if number:
                segments.append([])
            if piece:
                segments[-1].append((False, piece))
    return segments


def _check_function(text: str, segments: list[list[tuple[bool, str]]]) -> None:
    """Rule 6: only fixed-width fields and text before ``{function}``, and '/' after it."""
    before: list[str] = []
    for number, segment in enumerate(segments):
        for index, (is_field, value) in enumerate(segment):
            if not is_field:
                continue
            if value != "function":
                before.append(value)
                continue
            loose = [f for f in before if f in TEXT_FIELDS or f in NUMBER_FIELDS]
            if loose:
                raise KeyTemplateError(
                    text,
                    f"{' '.join('{' + f + '}' for f in loose)} before {{function}}: only text "
                    "and {yyyy} {mm} {dd} {hh} may come before it, so that a function's IAM "
                    "grant covers its own keys only; move {function} earlier",
                )
            if index != len(segment) - 1 or number == len(segments) - 1:
                raise KeyTemplateError(
                    text,
                    "{function} must be followed by '/', so that one function's grant cannot "
                    "reach another whose name starts the same ('ab' and 'abc')",
                )
            return


def _separates(part: tuple[bool, str]) -> bool:
    is_field, value = part
    return not is_field and not value.isdigit()


def _matcher(parts: tuple[tuple[bool, str], ...]) -> re.Pattern[str]:
    """The expression that reads a key back; each field is a named group."""
    pieces = []
    for is_field, value in parts:
        if not is_field:
            pieces.append(re.escape(value))
        elif value == "prefix":
            pieces.append("(?P<prefix>(?:.*/)?)")
        elif value in FIXED_WIDTH_FIELDS:
            pieces.append(f"(?P<{value}>[0-9]{{{FIXED_WIDTH_FIELDS[value]}}})")
        elif value in NUMBER_FIELDS:
            pieces.append(f"(?P<{value}>[0-9]+)")
        else:
            pieces.append(f"(?P<{value}>[{_SEGMENT_CHARS}]+)")
    return re.compile("".join(pieces), re.DOTALL)
