"""Grading a student edition without nbgrader: ``python -m minivae grade FOLDER [FOLDER ...]``.

What is graded is decided here and on the instructor's command line, never by a file in the
student's folder: the library exercises (unless ``--no-library``) by the checks of
:mod:`minivae.course.library_checks`, each in a process of its own whose verdict line carries a
token the student's code never sees; every lesson by executing the student's notebook in smoke
mode with the instructor's check cells put back (matched by ``grade_id``: hidden tests return,
edited checks are undone) and the instructor's ``minivae``.

A check cell scores its points when the check itself reached its verdict: the grader appends to
the cell a line that prints a token of its own, after the checks, so a cell that stopped early
scores nothing even when no error shows (an exception-swallowing handler, say). Each cell has
``timeout`` seconds; a cell that runs longer is interrupted and the notebook goes on, so one
endless loop costs only the exercises it stops. With several folders (or ``--class DIR``) every
student is graded in turn, with a CSV table of the class and a feedback file per student.
"""

from __future__ import annotations

import csv
import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .edition import DEFAULT_LESSONS, PACKAGE_DIR, AssignmentError, _lesson_paths, _nbgrader
from .library_checks import LIBRARY_CHECKS, _first_line, run_check

__all__ = ["Score", "grade", "grade_class", "write_feedback"]


@dataclass
class Score:
    """One graded exercise."""

    name: str
    earned: float
    possible: float
    detail: str = ""

    def line(self, width: int = 32) -> str:
        text = f"{self.name:<{width}} {_num(self.earned):>4}/{_num(self.possible):<4}"
        return (text + (f"  {self.detail}" if self.detail else "")).rstrip()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _grade_library(folder: Path, names, timeout: float) -> list[Score]:
    scores = []
    for name in names:
        points, what, _ = LIBRARY_CHECKS[name]
        result = run_check(folder, name, timeout=timeout)
        earned = points if result["ok"] else 0
        detail = result["detail"] if result["ok"] else f"{what}: {result['detail']}"
        scores.append(Score(f"library {name}", earned, points, detail))
    return scores


def _exercise_titles(nb) -> dict[str, str]:
    """grade_id of each check cell → the title of the exercise heading above it."""
    titles, title = {}, ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#+\s*(Exercise\b.*)$", cell.source, re.MULTILINE)
            if match:
                title = re.sub(r"^Exercise\s+\d+\s*[—:.-]*\s*", "", match.group(1)).strip()
        elif _nbgrader(cell).get("grade") and not _nbgrader(cell).get("solution"):
            titles[_nbgrader(cell).get("grade_id", "")] = title
    return titles


#: Put before every restored check cell: the instructor's checks, whatever the student's cells
#: did to the module (``checks.check_close = ...``).
RELOAD_CHECKS = "import importlib as _il, minivae.checks as _mc; checks = _il.reload(_mc)\n"


def _stdout(cell) -> str:
    return "".join(
        o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"
    )


def _grade_notebook(student: Path, source: Path, timeout: float) -> list[Score]:
    import nbformat
    from nbclient import NotebookClient

    original = nbformat.read(source, as_version=4)
    checks = {
        _nbgrader(c)["grade_id"]: c
        for c in original.cells
        if c.cell_type == "code" and _nbgrader(c).get("grade") and _nbgrader(c).get("grade_id")
    }
    titles = _exercise_titles(original)
    lesson = source.stem

    def label(gid):
        return f"{lesson} {gid.removesuffix('_check')}"

    def why(gid, error=""):
        """The exercise's title, and after a dash what went wrong."""
        return " — ".join(t for t in (titles.get(gid, ""), error) if t)

    if not student.is_file():
        return [
            Score(label(g), 0, _points(c), why(g, f"{student.name} is missing"))
            for g, c in checks.items()
        ]
    try:
        nb = nbformat.read(student, as_version=4)
    except Exception as exc:
        return [
            Score(label(g), 0, _points(c), why(g, f"cannot read it: {_first_line(exc)}"))
            for g, c in checks.items()
        ]
    found, tokens = set(), {}
    for cell in nb.cells:  # restore the checks, hidden tests included, each ending in its token
        gid = _nbgrader(cell).get("grade_id")
        if gid in checks and gid not in found:
            found.add(gid)
            tokens[gid] = "minivae-verdict-" + secrets.token_hex(16)
            cell.cell_type = "code"
            cell.source = (
                RELOAD_CHECKS + checks[gid].source.rstrip() + f"\nprint({tokens[gid]!r})\n"
            )
            cell.metadata = dict(checks[gid].metadata)
            cell.outputs, cell.execution_count = [], None
    package_root = str(PACKAGE_DIR.parent)
    env = dict(os.environ, MINIVAE_LESSON_MODE="smoke", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in [env.get("PYTHONPATH")] if p])
    client = NotebookClient(
        nb,
        timeout=timeout,
        interrupt_on_timeout=True,  # a cell that runs too long is stopped; the next ones run
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(student.parent)}},
    )
    failure = ""
    try:
        client.execute(env=env, stderr=subprocess.DEVNULL)
    except Exception as exc:  # a dead kernel: the unexecuted checks fail
        failure = _first_line(exc)
    scores = []
    for gid, check in checks.items():
        possible = _points(check)
        if gid not in found:
            scores.append(Score(label(gid), 0, possible, why(gid, "check cell deleted")))
            continue
        cell = next(c for c in nb.cells if _nbgrader(c).get("grade_id") == gid)
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        reached = tokens[gid] in _stdout(cell).split("\n")
        if errors:
            err = errors[0]
            text = str(err.get("evalue", "")).strip().split("\n")[0]
            detail = f"{err.get('ename', 'Error')}: {text}" if text else err.get("ename", "Error")
            if err.get("ename") == "KeyboardInterrupt":
                detail = f"did not finish within {timeout:g} s"
            scores.append(Score(label(gid), 0, possible, why(gid, detail)))
        elif cell.get("execution_count") is None:
            scores.append(Score(label(gid), 0, possible, why(gid, failure or "not executed")))
        elif not reached:
            detail = "the checks did not reach their verdict (an error was hidden?)"
            scores.append(Score(label(gid), 0, possible, why(gid, detail)))
        else:
            scores.append(Score(label(gid), possible, possible, why(gid)))
    return scores


def _points(cell) -> float:
    try:
        return float(_nbgrader(cell).get("points", 0))
    except (TypeError, ValueError):
        return 0.0


def grade(
    folder,
    lessons=None,
    only=None,
    timeout: float = 120.0,
    library: bool = True,
    out=print,
) -> list[Score]:
    """Grade a student edition; prints one line per exercise and a total, returns the scores.

    ``library=False`` (``--no-library``: an edition written with ``--keep-library``) skips the
    library checks; nothing in the student's folder decides it. ``only`` limits grading to some
    names: ``library`` (all library checks), a library check (``linear_backward``,
    ``adam_step``, ``sampler_backward``, ``kl_standard_normal``), or a lesson
    (``05_reparameterization``, or just ``05``). ``timeout``: seconds per notebook cell and per
    library check.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AssignmentError(f"{folder} is not a folder")
    student_lessons = folder / "lessons"
    if not (folder / "minivae").is_dir() and not student_lessons.is_dir():
        raise AssignmentError(
            f"{folder} is not a student edition: it has neither minivae/ nor lessons/ "
            "(write one with `python -m minivae assign OUT`)"
        )
    if not 0 < timeout < float("inf"):
        raise AssignmentError(f"--timeout must be a positive number of seconds, got {timeout}")
    wanted = set(only or [])
    try:
        sources = _lesson_paths(Path(lessons) if lessons is not None else DEFAULT_LESSONS)
    except AssignmentError:
        if not wanted or not wanted <= set(LIBRARY_CHECKS) | {"library"}:
            raise
        sources = []  # grading only the library needs no notebooks

    def selected(*names):
        return not wanted or bool(wanted.intersection(names))

    lesson_names = {p.stem for p in sources} | {p.stem.split("_")[0] for p in sources}
    unknown = wanted - set(LIBRARY_CHECKS) - {"library"} - lesson_names
    if unknown:
        raise AssignmentError(
            f"unknown name(s) for --only: {', '.join(sorted(unknown))} (use 'library', "
            f"{', '.join(LIBRARY_CHECKS)}, or a lesson's name or number)"
        )
    names = [n for n in LIBRARY_CHECKS if library and selected("library", n)]
    scores = _grade_library(folder, names, timeout=timeout)
    for line in scores:
        out(line.line())
    for source in sources:
        if selected(source.stem, source.stem.split("_")[0]):
            lesson_scores = _grade_notebook(student_lessons / source.name, source, timeout)
            for line in lesson_scores:
                out(line.line())
            scores += lesson_scores
    earned, possible = sum(s.earned for s in scores), sum(s.possible for s in scores)
    out(f"{'total':<32} {_num(earned):>4}/{_num(possible):<4}")
    return scores


def write_feedback(scores: list[Score], path, student: str) -> None:
    """A Markdown file for one student: each exercise, its points and what went wrong."""
    earned, possible = sum(s.earned for s in scores), sum(s.possible for s in scores)
    lines = [f"# Feedback for {student}", "", f"Total: {_num(earned)} / {_num(possible)}", ""]
    lines += ["| exercise | points | note |", "|---|---|---|"]
    for s in scores:
        note = s.detail.replace("|", "\\|")
        lines.append(f"| {s.name} | {_num(s.earned)} / {_num(s.possible)} | {note} |")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def grade_class(folders, csv_path=None, feedback_dir=None, out=print, **options) -> dict:
    """Grade each student's folder in turn (``options`` as for :func:`grade`); returns
    {student: scores}. ``csv_path``: one row per student, a column per exercise and the total.
    ``feedback_dir``: a Markdown feedback file per student (``<student>.md``). A folder that
    cannot be graded gets a row of zeros and says why, and the others are still graded."""
    results, reasons = {}, {}
    for folder in folders:
        folder = Path(folder)
        student = folder.name
        out(f"== {student}")
        try:
            results[student] = grade(folder, out=out, **options)
        except AssignmentError as err:
            out(f"   cannot grade {folder}: {err}")
            results[student], reasons[student] = [], str(err)
        if feedback_dir is not None:
            write_feedback(results[student], Path(feedback_dir) / f"{student}.md", student)
    if csv_path is not None:
        columns = []
        for scores in results.values():
            columns += [s.name for s in scores if s.name not in columns]
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["student", *columns, "total", "possible", "note"])
            for student, scores in results.items():
                by_name = {s.name: s for s in scores}
                row = [_num(by_name[c].earned) if c in by_name else "0" for c in columns]
                total = sum(s.earned for s in scores)
                possible = sum(s.possible for s in scores)
                writer.writerow(
                    [student, *row, _num(total), _num(possible), reasons.get(student, "")]
                )
    return results


def class_folders(class_dir) -> list[Path]:
    """The student folders in ``class_dir``: each subfolder holding lessons/ or minivae/."""
    class_dir = Path(class_dir)
    if not class_dir.is_dir():
        raise AssignmentError(f"--class {class_dir}: not a folder")
    folders = [
        p
        for p in sorted(class_dir.iterdir())
        if p.is_dir() and ((p / "lessons").is_dir() or (p / "minivae").is_dir())
    ]
    if not folders:
        raise AssignmentError(f"--class {class_dir}: no student folder (with lessons/ or minivae/)")
    return folders
