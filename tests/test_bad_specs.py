"""The corpus of bad specs: every file in tests/bad_specs/ must make `analyze` exit 2 with a
message that names the file, line and column of the offending node and says what is wrong.

Each file states its expectation in its leading comments:

    # expect: 14:5 kernel height 5 exceeds input height L - 7   (line:col, then a message fragment)
    # also: valid only for L >= 12                               (optional: more fragments)
    # args: --set L=11                                           (optional: extra command-line arguments)
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from analyzer import cli

CORPUS = Path(__file__).parent / "bad_specs"


@dataclass(frozen=True)
class Case:
    path: Path
    line: int
    column: int
    fragments: tuple[str, ...]
    args: tuple[str, ...]


def read_case(path: Path) -> Case:
    header = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("#"):
                break
            header.append(line.rstrip("\n"))
    expect = [h for h in header if h.startswith("# expect: ")]
    assert len(expect) == 1, f"{path.name}: needs one '# expect: LINE:COL fragment' line"
    match = re.fullmatch(r"# expect: (\d+):(\d+) (.+)", expect[0])
    assert match, f"{path.name}: malformed expect line {expect[0]!r}"
    also = tuple(h.removeprefix("# also: ") for h in header if h.startswith("# also: "))
    args = next((tuple(shlex.split(h.removeprefix("# args: "))) for h in header if h.startswith("# args: ")), ())
    return Case(path, int(match.group(1)), int(match.group(2)), (match.group(3), *also), args)


CASES = [read_case(p) for p in sorted(CORPUS.glob("*.yaml"))]


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.path.stem for c in CASES])
def test_bad_spec(case: Case, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a spec that managed to run code would leave files here
    status = cli.main([str(case.path), *case.args])
    out, err = capsys.readouterr()
    assert status == 2, err
    assert out == ""
    assert err.startswith("error: ")
    assert "Traceback" not in err and "internal error" not in err
    assert f"{case.path}:{case.line}:{case.column}: " in err, err
    for fragment in case.fragments:
        assert fragment in err, f"{fragment!r} not in:\n{err}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ["", "\n\n", "   \n", "---\n", "# only a comment\n"])
def test_empty_files(text, capsys, tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert cli.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:1:1: the file is empty" in err
