"""docs/errors.md: every row is backed by a test that exists and asserts the row's message."""

import importlib
import inspect
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _table_rows():
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and "::" in cells[3]:
            rows.append(cells)
    return rows


def _test_function(ref):
    """The source (decorators included) of the test that ``tests/file.py::name[id]`` names."""
    file, name = ref.strip("`").split("::")
    name, _, case = name.partition("[")
    assert (ROOT / file).is_file(), f"{file} does not exist"
    module = importlib.import_module(Path(file).stem)  # tests/ is on sys.path under pytest
    func = getattr(module, name, None)
    assert callable(func), f"{ref}: no test function {name} in {file}"
    source = inspect.getsource(func)
    assert f'"{case.rstrip("]")}"' in source or not case, f"{ref}: no case {case.rstrip(']')}"
    return source


def _plain(source):
    """Test source as the messages read: adjacent string literals joined, regex escapes undone."""
    joined = re.sub(r"[\"']\s*\n\s*[rfb]*[\"']", "", source)
    return re.sub(r"\\(\W)", r"\1", joined)


def test_the_errors_table_is_backed_by_tests_that_assert_its_messages():
    rows = _table_rows()
    assert len(rows) >= 60, "docs/errors.md should list every bad input"
    for bad_input, exception, message, ref in rows:
        body = _plain(_test_function(ref))
        for fixed in re.findall(r"`([^`]+)`", message):
            for piece in fixed.split("…"):
                piece = piece.strip()
                if len(piece) >= 6:
                    assert piece in body, f"{ref} does not assert {piece!r} (row: {bad_input})"
        for name in re.findall(r"`(\w+)`", exception):
            assert name in body, f"{ref} does not check for {name} (row: {bad_input})"
