"""The key is the identity: a function's file cannot add to, or hide, another function's data.

fn-a may write only under its own key folder, so everything here is written
under fn-a's key: data labelled ``fn-b@7`` (lines added to fn-b's report),
``fn-b@8`` (a newer version, which ``--function-version latest`` would report
alone, dropping fn-b's real data) and data labelled with no function at all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from coverage_combiner import CombineOptions, combine, combine_coverage_files
from coverage_combiner.cli import EXIT_PARTIAL, main
from coverage_combiner.lambda_handler import handler
from coverage_combiner.merge import Merged, bits_to_lines, split_context
from coverage_wrapper.keys import DEFAULT_KEY_TEMPLATE, KeyTemplate
from tests.combiner.conftest import key, read_data, write_data
from tests.combiner.test_parallel import Recorder

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Lines = dict[str, dict[str, set[int]]]

FN_B = key("fn-b", "7", pid=1)
FN_A = key("fn-a", "7", pid=2)
#: What each function really ran: fn-b's own file, and fn-a's own contexts.
REAL: Lines = {"fn-a": {"a.py": {1, 9}}, "fn-b": {"b.py": {1, 2}}}


def hostile_files(root: Path) -> dict[str, Path]:
    """fn-b's own data file, and fn-a's, which also claims fn-b's lines (versions 7 and 8)."""
    return {
        FN_B: write_data(root / FN_B, lines={"fn-b@7|invocation": {"b.py": {1, 2}}}),
        FN_A: write_data(
            root / FN_A,
            lines={
                "fn-a@7|invocation": {"a.py": {1}},
                "fn-b@7|invocation": {"b.py": {50}},
                "fn-b@8|invocation": {"b.py": {60}},
                # No function named: read as the key's own (fn-a@7).
                "": {"a.py": {9}},
            },
        ),
    }


def by_function(merged: Merged) -> Lines:
    """Executed lines per function and file."""
    found: Lines = {}
    for (context, path), bits in merged.executed().items():
        files = found.setdefault(split_context(context)[0], {})
        files.setdefault(path, set()).update(bits_to_lines(bits))
    return found


@pytest.fixture
def on_s3(s3: S3Client, bucket: str, tmp_path: Path) -> str:
    for name, path in hostile_files(tmp_path / "staging").items():
        s3.put_object(Bucket=bucket, Key=name, Body=path.read_bytes())
    return bucket


@pytest.mark.parametrize("version", ["latest", "all"])
@pytest.mark.parametrize("function", [None, "fn-b", "fn-a"])
def test_plain_and_function_combines_agree_on_s3(
    s3: S3Client, on_s3: str, function: str | None, version: str
) -> None:
    options = CombineOptions(function=function, version=version, processes=1)
    result = combine([f"s3://{on_s3}/coverage/"], options, s3=s3)
    expected = REAL if function is None else {function: REAL[function]}
    assert by_function(result.merged) == expected
    if function != "fn-a":
        # fn-b's own version is all there is: the forged 8 neither wins "latest" nor joins "all".
        assert result.versions.kept["fn-b"] == ["7"]
        assert "fn-b" not in result.versions.dropped
    named = [f"s3://{on_s3}/{FN_A}"] if function != "fn-b" else []
    assert [name for name, _ in result.foreign] == named
    assert result.partial is bool(named)


def test_the_contexts_that_count_are_the_keys_own(s3: S3Client, on_s3: str) -> None:
    result = combine([f"s3://{on_s3}/coverage/"], CombineOptions(processes=1), s3=s3)
    assert result.merged.contexts() == {
        "fn-a@7|invocation",
        "fn-a@7",  # the context that named no function, read as the key's
        "fn-b@7|invocation",
    }
    assert result.foreign == [
        (
            f"s3://{on_s3}/{FN_A}",
            "holds data labelled 'fn-b@7', 'fn-b@8', which its key (fn-a/7) does not name: not "
            "counted; only fn-a/7's data was merged from it (a function speaks only for itself: "
            "see 'Trust model' in the combiner's README)",
        )
    ]
    assert f"s3://{on_s3}/{FN_A}: holds data labelled 'fn-b@7', 'fn-b@8'" in result.warnings[0]


@pytest.mark.parametrize("quiet", [False, True])
def test_the_cli_names_the_object_and_exits_partial(
    s3: S3Client, on_s3: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], quiet: bool
) -> None:
    out = tmp_path / "out"
    args = ["combine", f"s3://{on_s3}/coverage/", "-o", str(out), "--format", "data,json"]
    assert main([*args, *(["-q"] if quiet else [])]) == EXIT_PARTIAL
    warnings = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("lambda-coverage")
    ]
    assert warnings == [
        f"lambda-coverage: warning: s3://{on_s3}/{FN_A}: holds data labelled 'fn-b@7', "
        "'fn-b@8', which its key (fn-a/7) does not name: not counted; only fn-a/7's data was "
        "merged from it (a function speaks only for itself: see 'Trust model' in the "
        "combiner's README)"
    ]
    lines, _, contexts = read_data(out / ".coverage")
    assert {Path(p).name: found for p, found in lines.items()} == {"a.py": {1, 9}, "b.py": {1, 2}}
    assert not any(c.startswith("fn-b@8") for c in contexts)
    summary = json.loads((out / "coverage-summary.json").read_text())
    assert summary["functions"]["fn-b"]["versions"] == ["7"]
    assert summary["functions"]["fn-b"]["executed_lines"] == 2


def test_a_folder_laid_out_by_the_key_template_is_read_the_same(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    hostile_files(root)
    for function in (None, "fn-b"):
        result = combine([str(root)], CombineOptions(function=function, processes=1))
        assert by_function(result.merged) == (REAL if function is None else {"fn-b": REAL["fn-b"]})
    assert [name for name, _ in combine([str(root)]).foreign] == [str(root / FN_A)]


def test_two_functions_unlabelled_app_py_stay_apart_in_a_folder(tmp_path: Path) -> None:
    # Another tool wrote both files without contexts: the paths say whose they are.
    root = tmp_path / "bucket"
    write_data(root / key("fn-a", "3", pid=1), lines={"": {"app.py": {1, 2}}})
    write_data(root / key("fn-b", "5", pid=1), lines={"": {"app.py": {7}}})
    result = combine([str(root)], CombineOptions(processes=1))
    assert by_function(result.merged) == {"fn-a": {"app.py": {1, 2}}, "fn-b": {"app.py": {7}}}
    assert result.merged.contexts() == {"fn-a@3", "fn-b@5"}
    assert not result.partial
    # Outside a key layout the contexts are all there is (as before): one app.py.
    loose = tmp_path / "loose"
    for number, path in enumerate(sorted(root.rglob("*.coverage"))):
        loose.mkdir(exist_ok=True)
        shutil.copyfile(path, loose / f"{number}.coverage")
    assert by_function(combine([str(loose)]).merged) == {"": {"app.py": {1, 2, 7}}}


def test_the_same_bytes_under_two_functions_keys_are_two_functions_data(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    first = write_data(root / key("fn-a", "7", pid=1), lines={"": {"app.py": {4}}})
    (root / key("fn-b", "7", pid=1)).parent.mkdir(parents=True)
    shutil.copyfile(first, root / key("fn-b", "7", pid=1))
    shutil.copyfile(first, root / key("fn-a", "7", pid=3))  # a true duplicate
    result = combine([str(root)], CombineOptions(processes=1))
    assert by_function(result.merged) == {"fn-a": {"app.py": {4}}, "fn-b": {"app.py": {4}}}
    assert result.duplicates == 1
    # Labelled fn-a: counted under fn-a's key, foreign under fn-b's, however often it is seen.
    labelled = write_data(tmp_path / "labelled.coverage", lines={"fn-a@7": {"x.py": {5}}})
    for function, pid in (("fn-a", 4), ("fn-b", 4), ("fn-b", 5)):
        shutil.copyfile(labelled, root / key(function, "7", pid=pid))
    result = combine([str(root)], CombineOptions(processes=1))
    assert by_function(result.merged)["fn-a"] == {"app.py": {4}, "x.py": {5}}
    assert by_function(result.merged)["fn-b"] == {"app.py": {4}}
    assert sorted(name for name, _ in result.foreign) == sorted(
        str(root / key("fn-b", "7", pid=pid)) for pid in (4, 5)
    )


def test_a_template_without_version_fixes_the_function_only(tmp_path: Path) -> None:
    template = "{prefix}{function}/{container}-{pid}-{seq}.coverage"
    root = tmp_path / "bucket"
    write_data(
        root / key("fn-a", template=template),
        lines={"fn-a@2": {"a.py": {1}}, "fn-b@2": {"b.py": {2}}, "": {"a.py": {3}}},
    )
    result = combine([str(root)], CombineOptions(key_template=template, version="all"))
    assert by_function(result.merged) == {"fn-a": {"a.py": {1, 3}}}
    assert result.merged.contexts() == {"fn-a@2", "fn-a@unknown"}
    assert [name for name, _ in result.foreign] == [str(root / key("fn-a", template=template))]


@pytest.mark.usefixtures("on_s3")
def test_worker_processes_apply_the_same_rule(
    s3: S3Client, on_s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coverage_combiner import parallel

    monkeypatch.setattr(parallel, "MIN_INPUTS_PER_PROCESS", 1)
    # More inputs, so that the work is cut into chunks the workers take.
    for pid in range(3, 40):
        body = s3.get_object(Bucket=on_s3, Key=FN_A)["Body"].read()
        s3.put_object(Bucket=on_s3, Key=key("fn-a", "7", pid=pid), Body=body)
    source = [f"s3://{on_s3}/coverage/"]
    serial = combine(source, CombineOptions(processes=1))
    recorder = Recorder()
    # No client passed: workers fetch with boto3's own configuration (the moto server).
    spread = combine(source, CombineOptions(processes=2), recorder)
    assert recorder.by_workers
    assert by_function(spread.merged) == by_function(serial.merged) == REAL
    assert spread.merged.contexts() == serial.merged.contexts()
    assert sorted(spread.foreign) == sorted(serial.foreign)
    assert len(spread.foreign) == 38  # every fn-a object, named once
    assert spread.duplicates == serial.duplicates == 37


def test_the_library_api_agrees(s3: S3Client, on_s3: str) -> None:
    summary = combine_coverage_files(on_s3, "coverage/", "reports/")
    assert {f: e["executed_lines"] for f, e in summary["functions"].items()} == {
        "fn-a": 2,
        "fn-b": 2,
    }
    assert summary["functions"]["fn-b"]["versions"] == ["7"]
    assert any(
        w.startswith(f"s3://{on_s3}/{FN_A}: holds data labelled") for w in summary["warnings"]
    )


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, on_s3: str) -> str:
    monkeypatch.setenv("COVERAGE_S3_BUCKET", on_s3)
    monkeypatch.setenv("COVERAGE_S3_PREFIX", "coverage/")
    monkeypatch.setenv("COVERAGE_COMBINED_PREFIX", "coverage-combined/")
    return on_s3


def downloaded(s3: S3Client, bucket: str, object_key: str, tmp_path: Path) -> Lines:
    local = tmp_path / "download" / object_key
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(s3.get_object(Bucket=bucket, Key=object_key)["Body"].read())
    from coverage import CoverageData

    data = CoverageData(basename=str(local))
    data.read()
    found: Lines = {}
    for context in data.measured_contexts():
        data.set_query_context(context)
        for path in data.measured_files():
            lines = set(data.lines(path) or ())
            if lines:
                files = found.setdefault(split_context(context)[0], {})
                files.setdefault(Path(path).name, set()).update(lines)
    return found


def test_the_scheduled_lambda_counts_the_keys_own_data(
    s3: S3Client, lambda_env: str, tmp_path: Path
) -> None:
    answer: dict[str, Any] = handler(
        {"source": "aws.events", "detail-type": "Scheduled Event"}, None
    )
    assert answer["warnings"][0].startswith(f"s3://{lambda_env}/{FN_A}: holds data labelled")
    assert answer["functions"]["fn-b"]["versions"] == ["7"]
    latest = "coverage-combined/latest/.coverage"
    assert downloaded(s3, lambda_env, latest, tmp_path) == REAL


def test_the_rolling_merge_counts_the_keys_own_data(
    s3: S3Client, lambda_env: str, tmp_path: Path
) -> None:
    records = [
        {"eventName": "ObjectCreated:Put", "s3": {"object": {"key": k}}} for k in (FN_A, FN_B)
    ]
    answer = handler({"Records": records}, None)
    assert answer["merged"] == [f"s3://{lambda_env}/{FN_A}", f"s3://{lambda_env}/{FN_B}"]
    assert [entry["input"] for entry in answer["foreign"]] == [f"s3://{lambda_env}/{FN_A}"]
    rolling = "coverage-combined/rolling/combined.coverage"
    assert downloaded(s3, lambda_env, rolling, tmp_path) == REAL
    # The rolling file is the combiner's own output: read back, nothing in it is refused.
    again = handler({"Records": records[1:]}, None)
    assert again["foreign"] == []
    assert downloaded(s3, lambda_env, rolling, tmp_path) == REAL


def test_a_key_spelling_another_functions_layout_inside_a_folder_counts_as_the_folders(
    tmp_path: Path,
) -> None:
    # fn-a may write anything under coverage/2026/11/25/fn-a/: here a key that
    # spells fn-b's layout (fn-b's own container and pid, a higher sequence
    # number), which would pass for fn-b's newest snapshot and hide the real one.
    root = tmp_path / "bucket"
    write_data(root / FN_B, lines={"fn-b@7|invocation": {"b.py": {1, 2}}})
    nested = FN_A.rpartition("/")[0] + "/" + key("fn-b", "7", pid=1, seq=999999)
    write_data(root / nested, lines={"fn-b@7|invocation": {"b.py": {70}}, "": {"a.py": {3}}})
    # A name the template cannot read, inside fn-a's folder.
    stray = FN_A.rpartition("/")[0] + "/evil.coverage"
    write_data(root / stray, lines={"fn-b@7|invocation": {"b.py": {80}}})
    for function in (None, "fn-b"):
        result = combine([str(root)], CombineOptions(function=function, processes=1))
        expected: Lines = {"fn-a": {"a.py": {3}}, "fn-b": {"b.py": {1, 2}}}
        assert by_function(result.merged) == (
            expected if function is None else {"fn-b": expected["fn-b"]}
        )
    result = combine([str(root)], CombineOptions(processes=1))
    assert sorted(name for name, _ in result.foreign) == [str(root / nested), str(root / stray)]
    assert result.superseded == 0


def test_the_owner_of_a_key_is_the_function_whose_folder_holds_it() -> None:
    template = KeyTemplate.parse_template(DEFAULT_KEY_TEMPLATE)
    own = key("fn-a", "7")
    assert template.owner(own) == "fn-a"
    assert template.owner("team/" + own) == "fn-a"
    nested = own.rpartition("/")[0] + "/" + key("fn-b", "7", prefix="")
    assert template.parse(nested) is not None
    assert template.parse(nested).function == "fn-b"  # type: ignore[union-attr]
    assert template.owner(nested) == "fn-a"
    assert template.owner("coverage/notes.txt") is None
    # Nothing between {prefix} and {function}: no place tells the owner.
    bare = KeyTemplate.parse_template("{prefix}{function}/{container}-{pid}-{seq}.coverage")
    assert bare.owner("coverage/fn-a/c1-1-000001.coverage") is None
