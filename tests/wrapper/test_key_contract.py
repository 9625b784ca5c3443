"""The S3 key contract: every valid template round-trips, and its IAM pattern is exact.

Templates come from a strategy that builds them from the grammar (plus the
default), and from a looser one that strings fields and text together at
random: whatever the second one produces, a template the contract accepts
must round-trip and keep functions apart, and one it refuses must say why.
"""

from __future__ import annotations

import re
import string
from datetime import datetime, timezone

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from coverage_wrapper.keys import (
    DATA_SUFFIX,
    DEFAULT_KEY_TEMPLATE,
    FIXED_WIDTH_FIELDS,
    NUMBER_FIELDS,
    KeyFields,
    KeyTemplate,
    KeyTemplateError,
    ParsedKey,
    is_probe_key,
    key_segment,
    normalize_prefix,
)
from tests.iam_patterns import iam_regex

SEGMENT_CHARS = string.ascii_letters + string.digits + "._=+-"
NON_DIGITS = SEGMENT_CHARS.translate(str.maketrans("", "", string.digits))
OPTIONAL_TEXT_FIELDS = ("version", "region", "run_id")
# Fast enough to run on every commit; hypothesis' database keeps failures found once.
FAST = settings(max_examples=150, deadline=None)


literals = st.text(alphabet=SEGMENT_CHARS, max_size=3)
#: Text with at least one non-digit, around a number field.
separators = st.builds(
    lambda before, middle, after: before + middle + after,
    st.text(alphabet=string.digits, max_size=1),
    st.sampled_from(NON_DIGITS),
    literals,
)


@st.composite
def segment(draw: st.DrawFn, items: list[str], *, function_last: bool = False) -> str:
    """One path segment holding the fields ``items`` (in that order) with text around them."""
    pieces = []
    for index, item in enumerate(items):
        if index == 0:
            # Text at the segment's start is not a neighbour field, but the rule is strict.
            lead = st.one_of(st.just(""), separators) if item in NUMBER_FIELDS else literals
        elif item in NUMBER_FIELDS or items[index - 1] in NUMBER_FIELDS:
            lead = separators
        else:
            lead = literals
        pieces.append(draw(lead))
        pieces.append("{" + item + "}")
    if items and items[-1] in NUMBER_FIELDS and not function_last:
        pieces.append(draw(st.one_of(st.just(""), separators)))
    elif not function_last:
        pieces.append(draw(literals))
    text = "".join(pieces)
    if function_last:
        gap: str = draw(separators if items and items[-1] in NUMBER_FIELDS else literals)
        return text + gap + "{function}"
    filler: str = draw(st.text(alphabet=SEGMENT_CHARS, min_size=1, max_size=3))
    return text or filler


@st.composite
def grammar_templates(draw: st.DrawFn) -> str:
    """A valid template built from the rules: fixed-width fields and text before
    ``{function}``, then segments with at most one free-text field each."""
    fixed = draw(st.permutations(list(FIXED_WIDTH_FIELDS)))[: draw(st.integers(0, 4))]
    split = draw(st.integers(0, len(fixed)))
    before, after = fixed[:split], fixed[split:]
    pre_count = draw(st.integers(0, 2))
    pre: list[list[str]] = [[] for _ in range(pre_count + 1)]
    for field in before:
        pre[draw(st.integers(0, pre_count))].append(field)
    head = [draw(segment(items)) for items in pre[:-1]]
    head.append(draw(segment(pre[-1], function_last=True)))
    texts = ["container", *draw(st.lists(st.sampled_from(OPTIONAL_TEXT_FIELDS), unique=True))]
    count = len(texts) + draw(st.integers(0, 2))
    post: list[list[str]] = [[] for _ in range(count)]
    for field, where in zip(texts, draw(st.permutations(range(count))), strict=False):
        post[where].append(field)
    for field in ["pid", "seq", *after]:
        post[draw(st.integers(0, count - 1))].append(field)
    tail = [draw(segment(draw(st.permutations(items)))) for items in post]
    return "{prefix}" + "/".join(head + tail) + ".coverage"


templates = st.one_of(st.just(DEFAULT_KEY_TEMPLATE), grammar_templates())

prefixes = st.lists(
    st.text(min_size=1, max_size=6).filter(lambda s: "/" not in s and s.strip() == s != ".."),
    max_size=3,
).map(lambda parts: "".join(p + "/" for p in parts))
iam_safe_prefixes = prefixes.filter(lambda p: "*" not in p and "?" not in p)
names = st.text(max_size=12)

key_fields = st.builds(
    KeyFields,
    prefix=prefixes,
    when=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 12, 31),
        timezones=st.just(timezone.utc),
    ),
    function=names,
    version=st.one_of(st.just("$LATEST"), st.integers(1, 999).map(str), names),
    region=st.one_of(st.just("eu-west-1"), names),
    container=st.one_of(st.text(alphabet="0123456789abcdef", min_size=16, max_size=16), names),
    pid=st.integers(0, 4_194_304),
    seq=st.integers(0, 10**9),
    run_id=st.one_of(st.none(), names),
)


def expected(template: KeyTemplate, fields: KeyFields) -> ParsedKey:
    """What parsing must give back: the fields as rendered, ``None`` where the template has none."""
    has = template.fields.__contains__
    return ParsedKey(
        prefix=normalize_prefix(fields.prefix),
        function=key_segment(fields.function),
        container=key_segment(fields.container),
        pid=fields.pid,
        seq=fields.seq,
        day=fields.when.date() if {"yyyy", "mm", "dd"} <= template.fields else None,
        hour=fields.when.hour if has("hh") else None,
        version=key_segment(fields.version) if has("version") else None,
        region=key_segment(fields.region) if has("region") else None,
        run_id=key_segment(fields.run_id or "_") if has("run_id") else None,
    )


@FAST
@given(text=templates, fields=key_fields)
def test_every_rendered_key_parses_back_to_its_fields(text: str, fields: KeyFields) -> None:
    template = KeyTemplate(text)
    key = template.render(fields)
    assert template.parse(key) == expected(template, fields)
    # The prefix a key was written under need not be known: any folder path is one.
    assert template.parse("elsewhere/" + key) == expected(template, fields)._replace(
        prefix="elsewhere/" + normalize_prefix(fields.prefix)
    )


def _name_pairs() -> st.SearchStrategy[tuple[str, str]]:
    """Two function names, often one the start of the other."""
    return st.one_of(
        st.tuples(names, names),
        st.builds(lambda n, s: (n, n + s), names, names),
        st.builds(lambda n, s: (n + s, n), names, names),
    )


@FAST
@given(
    text=templates, prefix=iam_safe_prefixes, pair=_name_pairs(), mine=key_fields, theirs=key_fields
)
@example(text=DEFAULT_KEY_TEMPLATE, prefix="coverage/", pair=("ab", "abc"), mine=None, theirs=None)
@example(text=DEFAULT_KEY_TEMPLATE, prefix="", pair=("orders", "orders-v2"), mine=None, theirs=None)
@example(text=DEFAULT_KEY_TEMPLATE, prefix="", pair=("orders-v2", "orders"), mine=None, theirs=None)
def test_a_functions_iam_pattern_matches_its_keys_and_no_other_functions(
    text: str,
    prefix: str,
    pair: tuple[str, str],
    mine: KeyFields | None,
    theirs: KeyFields | None,
) -> None:
    template = KeyTemplate(text)
    name, other = pair
    assume(key_segment(name) != key_segment(other))
    sample = KeyFields("", datetime(2026, 11, 25, 23, tzinfo=timezone.utc), "", "1", "r", "c", 7, 1)
    pattern = iam_regex(template.iam_object_pattern(prefix, key_segment(name)))
    own = template.render((mine or sample)._replace(prefix=prefix, function=name))
    assert pattern.fullmatch(own), (pattern.pattern, own)
    foreign = template.render((theirs or sample)._replace(prefix=prefix, function=other))
    assert not pattern.fullmatch(foreign), (pattern.pattern, foreign)


def test_the_default_pattern_is_the_documented_one() -> None:
    template = KeyTemplate.parse_template(DEFAULT_KEY_TEMPLATE)
    assert template.iam_object_pattern("coverage", "orders") == "coverage/????/??/??/orders/*"
    assert template.iam_object_pattern("", "orders") == "????/??/??/orders/*"
    hourly = KeyTemplate(
        "{prefix}{yyyy}{mm}{dd}-{hh}/x={function}/{container}-{pid}-{seq}.coverage"
    )
    assert hourly.iam_object_pattern("raw/", "f") == "raw/????????-??/x=f/*"


# Every field once, in any order, with text between them drawn from a few
# pieces: many of these break a rule, many do not.
_soup_tokens = st.sampled_from(
    ["", "1", "12", "-", "-", ".", "x=", "-1-", "/", "/", "/", "/", "a/", "/1", "/-"]
)


@st.composite
def template_soup(draw: st.DrawFn) -> str:
    optional = draw(
        st.lists(st.sampled_from([*OPTIONAL_TEXT_FIELDS, *FIXED_WIDTH_FIELDS]), unique=True)
    )
    fields = draw(st.permutations(["container", "pid", "seq", *optional]))
    fields.insert(draw(st.sampled_from([0, 0, 0, 1, 2])), "function")
    pieces = [draw(st.sampled_from(["{prefix}"] * 18 + ["", "a/"]))]
    for field in fields:
        if pieces[-1] == "{function}":
            between = st.sampled_from(["/", "/", "/", "/", "-", "1/"])
        elif pieces[-1] == "{prefix}":
            between = st.sampled_from(["", "", "1", "a/", "/"])
        else:
            between = _soup_tokens
        pieces.append(draw(between))
        pieces.append("{" + field + "}")
    ending = [".coverage"] * 6 + ["-.coverage", "/x.coverage", "1.coverage", ""]
    pieces.append(draw(st.sampled_from(ending)))
    return "".join(pieces)


@settings(max_examples=400, deadline=None)
@given(text=template_soup(), fields=key_fields, other=names)
def test_whatever_the_contract_accepts_round_trips_and_keeps_functions_apart(
    text: str, fields: KeyFields, other: str
) -> None:
    try:
        template = KeyTemplate(text)
    except KeyTemplateError as error:
        refused: KeyTemplateError | None = error
    else:
        refused = None
    if refused is not None:
        assert refused.template == text
        assert str(refused) == f"key template {text!r} is not valid: {refused.reason}"
        return
    key = template.render(fields)
    assert template.parse(key) == expected(template, fields)
    if "*" in fields.prefix or "?" in fields.prefix:
        return
    pattern = iam_regex(template.iam_object_pattern(fields.prefix, key_segment(fields.function)))
    assert pattern.fullmatch(key)
    if key_segment(other) != key_segment(fields.function):
        assert not pattern.fullmatch(template.render(fields._replace(function=other)))


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (
            "{prefix}{user}/{function}/{container}-{pid}-{seq}.coverage",
            "{user} is not a field; the fields are {prefix} {yyyy}",
        ),
        (
            "{prefix}{function}/{container}-{pid:05d}-{seq}.coverage",
            "{pid:05d} has a format or conversion: write the field bare",
        ),
        (
            "{prefix}{function}/{container}-{pid}-{seq}-{pid}.coverage",
            "{pid} appears twice; use each field at most once",
        ),
        ("{function}/{container}-{pid}-{seq}.coverage", "it must start with {prefix}"),
        ("x/{prefix}{function}/{container}-{pid}-{seq}.coverage", "it must start with {prefix}"),
        ("{prefix}{yyyy}/{container}-{pid}-{seq}.coverage", "it lacks {function}"),
        ("{prefix}{function}/{container}-{seq}.coverage", "it lacks {pid}"),
        ("{prefix}{function}/{container} {pid}-{seq}.coverage", "the text ' ' has ' '"),
        ("{prefix}{function}/{container}-{pid}-{seq}.coverage*", "has '*'"),
        ("{prefix}{function}/{{container}}-{pid}-{seq}.coverage", "the text '/{' has '{'"),
        ("{prefix}{function}/{container}-{pid}-{seq}.cov", "it must end in .coverage"),
        ("{prefix}/{function}/{container}-{pid}-{seq}.coverage", "empty path segment"),
        ("{prefix}{function}//{container}-{pid}-{seq}.coverage", "empty path segment"),
        (
            "{prefix}{region}/{function}/{container}-{pid}-{seq}.coverage",
            "{region} before {function}: only text and {yyyy} {mm} {dd} {hh}",
        ),
        (
            "{prefix}{run_id}-{function}/{container}-{pid}-{seq}.coverage",
            "{run_id} before {function}",
        ),
        (
            "{prefix}{function}-{version}/{container}-{pid}-{seq}.coverage",
            "{function} must be followed by '/'",
        ),
        (
            "{prefix}{function}/{version}-{container}/{pid}-{seq}.coverage",
            "{version} and {container} share a path segment",
        ),
        (
            "{prefix}{function}/{container}{pid}-{seq}.coverage",
            "{pid} needs text with a non-digit (such as '-') between it and its neighbour",
        ),
        ("{prefix}{function}/{container}-{pid}12{seq}.coverage", "{pid} needs text"),
        ("{prefix}{function}/{container}-{seq}{yyyy}/{pid}.coverage", "{seq} needs text"),
    ],
)
def test_an_invalid_template_is_refused_with_the_rule_and_the_fix(text: str, rule: str) -> None:
    with pytest.raises(KeyTemplateError) as raised:
        KeyTemplate(text)
    assert rule in raised.value.reason
    assert str(raised.value).startswith(f"key template {text!r} is not valid: ")
    assert isinstance(raised.value, ValueError)


_breakers = st.sampled_from(["no-prefix", "drop", "unknown", "suffix", "loose-first", "glue"])


@FAST
@given(
    text=templates, how=_breakers, which=st.sampled_from(["function", "container", "pid", "seq"])
)
def test_breaking_a_valid_template_gets_it_refused(text: str, how: str, which: str) -> None:
    if how == "no-prefix":
        broken = text.removeprefix("{prefix}")
    elif how == "drop":
        broken = text.replace("{" + which + "}", "")
    elif how == "unknown":
        broken = text.replace("{" + which + "}", "{" + which + "}{when}")
    elif how == "suffix":
        broken = text + "x"
    elif how == "loose-first":
        broken = text.replace("{prefix}", "{prefix}{region}/", 1)
    else:
        after = text.index("{function}") + len("{function}")
        broken = text[:after] + "-" + text[after + 1 :]
    with pytest.raises(KeyTemplateError):
        KeyTemplate(broken)


@pytest.mark.parametrize(
    "key",
    [
        "coverage/2026/02/30/fn/LATEST/c-1-000001.coverage",  # no such day
        "coverage/2026/13/01/fn/LATEST/c-1-000001.coverage",
        "coverage/2026/01/01/fn/LATEST/c-1-000001.coverage.tmp",
        "coverage/2026/01/01/fn/LATEST/c-x-000001.coverage",
        "coverage/2026/01/01/fn/c-1-000001.coverage",  # a segment short
        "coverage/2026/01/01/fn/a/b/c-1-000001.coverage",  # a segment long, prefix too short
        "2026/01/01/f n/LATEST/c-1-000001.coverage",
        "coverage/٢٠٢٦/01/01/fn/LATEST/c-1-000001.coverage",  # digits, but not ASCII
    ],
)
def test_keys_the_template_could_not_have_rendered_do_not_parse(key: str) -> None:
    template = KeyTemplate.parse_template(DEFAULT_KEY_TEMPLATE)
    parsed = template.parse(key)
    # A longer path can still parse with more of it taken as the prefix.
    assert parsed is None or parsed.prefix != "coverage/"


def test_the_prefix_is_every_folder_before_the_templates_own_part() -> None:
    template = KeyTemplate.parse_template(DEFAULT_KEY_TEMPLATE)
    parsed = template.parse("x/y/coverage/2026/01/31/fn/LATEST/c-1-2-000003.coverage")
    assert parsed == ParsedKey(
        prefix="x/y/coverage/",
        function="fn",
        container="c-1",
        pid=2,
        seq=3,
        day=datetime(2026, 1, 31).date(),
        version="LATEST",
    )


def test_an_hour_that_does_not_exist_does_not_parse() -> None:
    template = KeyTemplate("{prefix}{hh}/{function}/{container}-{pid}-{seq}.coverage")
    assert template.parse("24/fn/c-1-000001.coverage") is None
    parsed = template.parse("23/fn/c-1-000001.coverage")
    assert parsed is not None
    assert (parsed.hour, parsed.container, parsed.pid) == (23, "c", 1)


@pytest.mark.parametrize(
    ("text", "folder"),
    [
        ("coverage", "coverage/"),
        ("/coverage/", "coverage/"),
        (" a/b ", "a/b/"),
        ("", ""),
        ("/", ""),
        ("a/./b", "a/./b/"),
    ],
)
def test_normalize_prefix_makes_a_folder(text: str, folder: str) -> None:
    assert normalize_prefix(text) == folder


@pytest.mark.parametrize("text", ["..", "a/../b", "/../", "a/.."])
def test_normalize_prefix_refuses_a_parent_segment(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"key prefix {text!r} has a '..' segment")):
        normalize_prefix(text)


@pytest.mark.parametrize(
    ("prefix", "function", "message"),
    [
        ("coverage/", "orders*", "function 'orders*' cannot name one function's keys"),
        ("coverage/", "", "function '' cannot name"),
        ("coverage/", "a/b", "function 'a/b' cannot name"),
        ("cov*/", "orders", "key prefix 'cov*/' has '*' or '?'"),
    ],
)
def test_an_iam_pattern_that_would_reach_further_is_refused(
    prefix: str, function: str, message: str
) -> None:
    template = KeyTemplate.parse_template(DEFAULT_KEY_TEMPLATE)
    with pytest.raises(ValueError, match=re.escape(message)):
        template.iam_object_pattern(prefix, function)


def test_a_template_is_immutable_compares_by_text_and_is_parsed_once() -> None:
    template = KeyTemplate.parse_template(DEFAULT_KEY_TEMPLATE)
    assert KeyTemplate.parse_template(DEFAULT_KEY_TEMPLATE) is template
    assert template == KeyTemplate(DEFAULT_KEY_TEMPLATE)
    assert hash(template) == hash(KeyTemplate(DEFAULT_KEY_TEMPLATE))
    assert template.fields == {
        "prefix",
        "yyyy",
        "mm",
        "dd",
        "function",
        "version",
        "container",
        "pid",
        "seq",
    }
    with pytest.raises(AttributeError, match="KeyTemplate is immutable"):
        template.text = "x"


def test_negative_numbers_are_refused_rather_than_written_unparseable() -> None:
    template = KeyTemplate.parse_template(DEFAULT_KEY_TEMPLATE)
    fields = KeyFields("p/", datetime(2026, 1, 1, tzinfo=timezone.utc), "f", "1", "r", "c", -1, 1)
    with pytest.raises(ValueError, match="pid=-1 and seq=1 must not be negative"):
        template.render(fields)


#: Valid templates a function may write with, each with its probe key for
#: function ``orders`` (container ``c1``, pid 7) at 2026-11-25 13:00 UTC.
PROBE_KEYS = {
    DEFAULT_KEY_TEMPLATE: "raw/2026/11/25/orders/_health/c1-7.probe",
    "{prefix}{yyyy}/{mm}/{dd}/{function}/{run_id}/{version}/{container}-{pid}-{seq}.coverage": (
        "raw/2026/11/25/orders/_health/c1-7.probe"
    ),
    "{prefix}{function}/{region}/{version}/{container}-{pid}-{seq}.coverage": (
        "raw/orders/_health/c1-7.probe"
    ),
    "{prefix}{yyyy}{mm}{dd}-{hh}/x={function}/{container}-{pid}-{seq}.coverage": (
        "raw/20261125-13/x=orders/_health/c1-7.probe"
    ),
    "{prefix}{yyyy}/{mm}/{dd}/{function}/{container}-{pid}-{seq}.coverage": (
        "raw/2026/11/25/orders/_health/c1-7.probe"
    ),
}


@pytest.mark.parametrize("text", list(PROBE_KEYS))
def test_the_probe_key_is_inside_the_functions_grant_and_no_other(text: str) -> None:
    template = KeyTemplate(text)
    when = datetime(2026, 11, 25, 13, 5, tzinfo=timezone.utc)
    probe = template.probe_key(prefix="raw", when=when, function="orders", container="c1", pid=7)
    assert probe == PROBE_KEYS[text]
    assert iam_regex(template.iam_object_pattern("raw", "orders")).fullmatch(probe)
    for other in ("order", "orders-v2", "_health", "ordersx"):
        assert not iam_regex(template.iam_object_pattern("raw", other)).fullmatch(probe), other
    # Never a data file: the template cannot read it, and the contract calls it a probe.
    assert not probe.endswith(DATA_SUFFIX)
    assert template.parse(probe) is None
    assert is_probe_key(probe)


@FAST
@given(text=templates, prefix=iam_safe_prefixes, fields=key_fields, other=names)
def test_for_any_valid_template_the_probe_stays_in_its_functions_folder(
    text: str, prefix: str, fields: KeyFields, other: str
) -> None:
    template = KeyTemplate(text)
    fields = fields._replace(prefix=prefix)
    probe = template.probe_key(
        prefix=prefix,
        when=fields.when,
        function=fields.function,
        container=fields.container,
        pid=fields.pid,
    )
    own = iam_regex(template.iam_object_pattern(prefix, key_segment(fields.function)))
    assert own.fullmatch(probe), (own.pattern, probe)
    if key_segment(other) != key_segment(fields.function):
        theirs = iam_regex(template.iam_object_pattern(prefix, key_segment(other)))
        assert not theirs.fullmatch(probe), (theirs.pattern, probe)
    assert template.parse(probe) is None
    assert is_probe_key(probe)
    # And no data key is taken for a probe.
    assert not is_probe_key(template.render(fields))


@pytest.mark.parametrize(
    ("key", "probe"),
    [
        ("coverage/2026/11/25/orders/_health/c1-7.probe", True),
        ("coverage/_health/c1-7.probe", True),  # where earlier wrappers put it
        ("_health/c1-7.probe", True),
        ("coverage/2026/11/25/orders/c1-7.probe", False),
        ("coverage/2026/11/25/orders/_health/c1-7-000001.coverage", False),
        ("coverage/2026/11/25/orders/_health/sub/c1-7.probe", False),
        ("coverage/2026/11/25/orders/x_health/c1-7.probe", False),
        ("coverage/2026/11/25/orders/_health/c1-7.probe.coverage", False),
    ],
)
def test_is_probe_key_knows_the_probe_places_only(key: str, probe: bool) -> None:
    assert is_probe_key(key) is probe
