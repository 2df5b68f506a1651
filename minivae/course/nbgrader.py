"""minivae as an nbgrader course: ``python -m minivae assign COURSE --nbgrader ASSIGNMENT``.

nbgrader stubs the notebooks' solution cells, locks and restores their check cells, and keeps
the grades in its gradebook; what it cannot do alone this module prepares:

* the library exercises: nbgrader copies ``.py`` files into the release as they are, solutions
  and all, so ``source/ASSIGNMENT/minivae/`` is already the student's library (stubs, task
  docstrings, no ``course/``);
* their grades: ``library_checks.ipynb``, a locked notebook whose graded cells run each library
  check on the student's ``minivae/`` in a fresh process (:func:`~minivae.course.library_checks.
  check_library`), which the student's code cannot reach, so the 10 library points sit in the
  gradebook beside the notebooks';
* ``nbgrader_config.py``: the student's four library files are kept at autograde
  (``Autograde.exclude_overwriting``) and every other file is put back from the source (an edited
  ``checks.py`` is undone); the lessons run at their smoke sizes; a cell that runs too long is
  interrupted and the rest still run.

The course layout is nbgrader's own: ``source/``, ``release/``, ``submitted/<student>/``,
``autograded/``, ``feedback/`` and ``gradebook.db`` under COURSE.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..checks import LIBRARY_EXERCISES
from .edition import DEFAULT_LESSONS, AssignmentError, _lesson_paths, assign
from .library_checks import LIBRARY_CHECKS

__all__ = ["CONFIG", "library_notebook", "write_course"]

CONFIG = '''"""nbgrader's configuration for the minivae course (from python -m minivae assign)."""

import os

c = get_config()  # noqa: F821 (nbgrader defines it)

# autograde runs the lessons at their smoke sizes (seconds, not minutes); the notebook kernels
# inherit this process's environment
os.environ.setdefault("MINIVAE_LESSON_MODE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")

c.CourseDirectory.course_id = "minivae"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".venv"]

# the library files students write stay theirs at autograde; every other file (checks.py, the
# rest of the library) is put back from source/, so editing it changes nothing
c.Autograde.exclude_overwriting = {assignments!r}

# seconds per cell; a cell that runs longer is interrupted and the notebook goes on
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
'''


def _cell(kind: str, source: str, **nbgrader) -> dict:
    import nbformat

    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, "solution": False, **nbgrader}
    return cell


LOADER = """\
# Run when the course grades your work: each graded cell below runs one check of the library
# exercises on the minivae/ beside this notebook, in a fresh Python process.
import os
import sys

sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != os.getcwd()]
try:  # the grader's checks are installed where the course is graded, not in your copy
    from minivae.course.library_checks import check_library
except ImportError:

    def check_library(name, folder="."):
        raise RuntimeError(
            "the library checks run when the course grades your work; until then, the check "
            "cells of the lessons test the same functions"
        )
"""


def library_notebook():
    """The locked, graded notebook for the library exercises (one graded cell per check)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    intro = [
        "# The library exercises",
        "",
        "Graded by the course, not by you: each cell runs one "
        "check on your `minivae/` in a fresh process. The functions:",
        "",
    ]
    for name, (file, lesson, exercise) in LIBRARY_EXERCISES.items():
        intro.append(f"- `{name}` in `{file}` (lesson {lesson}, exercise {exercise})")
    nb.cells.append(_cell("markdown", "\n".join(intro), grade=False, grade_id="intro", locked=True))
    nb.cells.append(_cell("code", LOADER, grade=False, grade_id="loader", locked=True))
    for name, (points, _, _) in LIBRARY_CHECKS.items():
        nb.cells.append(
            _cell(
                "code",
                f'check_library("{name}")',
                grade=True,
                grade_id=f"library_{name}",
                locked=True,
                points=points,
            )
        )
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    return nb


def write_course(out, assignment: str, lessons=None, force: bool = False) -> dict:
    """Write an nbgrader course in ``out``: ``nbgrader_config.py`` and ``source/<assignment>/``
    with the instructor's lessons (nbgrader stubs them), the student's library (already
    stubbed), ``library_checks.ipynb`` and ``requirements.txt``. Returns a summary."""
    import nbformat

    if not assignment or not assignment.replace("_", "").replace("-", "").isalnum():
        raise AssignmentError(
            f"--nbgrader {assignment!r}: an assignment name is letters, digits, - and _"
        )
    out = Path(out)
    lessons = Path(lessons) if lessons is not None else DEFAULT_LESSONS
    paths = _lesson_paths(lessons)
    source = out / "source" / assignment
    if source.exists() and any(source.iterdir()) and not force:
        raise AssignmentError(f"{source} exists and is not empty (use --force to overwrite it)")
    if source.exists():
        shutil.rmtree(source)
    edition = out / ".edition"  # the student's library, built by assign, then moved in place
    shutil.rmtree(edition, ignore_errors=True)
    assign(edition, lessons=lessons, force=True)
    source.mkdir(parents=True)
    shutil.move(str(edition / "minivae"), str(source / "minivae"))
    shutil.move(str(edition / "requirements.txt"), str(source / "requirements.txt"))
    shutil.rmtree(edition)
    for path in paths:  # nbgrader makes the student's notebooks from the instructor's own
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:  # the library sits beside the notebooks here, not one folder up
            if cell.cell_type == "markdown":
                cell.source = cell.source.replace("](../minivae/", "](minivae/")
        (source / path.name).write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    nbformat.write(library_notebook(), source / "library_checks.ipynb")
    kept = sorted(file for file, _, _ in LIBRARY_EXERCISES.values())
    config = CONFIG.replace("{assignments!r}", repr({assignment: kept}))
    (out / "nbgrader_config.py").write_text(config, encoding="utf-8")
    return {"notebooks": [p.name for p in paths] + ["library_checks.ipynb"], "kept": kept}
