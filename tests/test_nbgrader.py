"""The course through nbgrader: ``python -m minivae assign COURSE --nbgrader A`` writes a course
that nbgrader's own generate_assignment and autograde grade, library exercises included, with the
scores in nbgrader's gradebook. One lesson keeps the round trip short."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

try:
    from nbgrader.api import Gradebook
except ImportError:  # pragma: no cover - the course extra installs it
    pytest.skip(
        "nbgrader is not installed (pip install -e .[course]); the round trip needs it",
        allow_module_level=True,
    )

from minivae.checks import LIBRARY_EXERCISES  # noqa: E402 (after the skip)
from minivae.course.library_checks import LIBRARY_CHECKS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LESSON = "05_reparameterization"
EXERCISE_FILES = sorted({Path(file).name for file, _, _ in LIBRARY_EXERCISES.values()})


def nbgrader(course, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MINIVAE_LESSON_MODE")}
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_nbgrader_grades_the_key_in_full_and_the_stubs_with_zero(tmp_path):
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    shutil.copy(ROOT / "lessons" / f"{LESSON}.ipynb", lessons)
    course = tmp_path / "course"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "minivae",
            "assign",
            course,
            "--nbgrader",
            "vae",
            "--lessons",
            lessons,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    source = course / "source" / "vae"
    assert (course / "nbgrader_config.py").is_file() and (source / "library_checks.ipynb").is_file()
    assert not (source / "minivae" / "course").exists(), "the grader is not released"

    nbgrader(course, "generate_assignment", "vae", "--force")
    release = course / "release" / "vae"
    for name in EXERCISE_FILES:  # the library goes out as stubs
        assert "# YOUR CODE HERE" in (release / "minivae" / name).read_text()
    released = (release / f"{LESSON}.ipynb").read_text()
    assert "raise NotImplementedError" in released
    assert "](minivae/sampling.py)" in released and "](../minivae/" not in released

    key = course / "submitted" / "key" / "vae"  # the instructor's notebooks and library
    shutil.copytree(source, key)
    for name in EXERCISE_FILES:
        shutil.copy(ROOT / "minivae" / name, key / "minivae" / name)
    stub = course / "submitted" / "stub" / "vae"  # the release, handed in untouched...
    shutil.copytree(release, stub)
    with open(stub / "minivae" / "checks.py", "a") as f:  # ...but for checks that always pass
        f.write("\n\ndef check_gradient(*args, **kwargs):\n    print('✓')\n")

    nbgrader(course, "autograde", "vae", "--force")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {}
        for student in ("key", "stub"):
            submission = gb.find_submission("vae", student)
            scores[student] = {
                f"{nb.name} {g.name}": (g.score, g.max_score)
                for nb in submission.notebooks
                for g in nb.grades
            }
    library = [name for name in scores["key"] if name.startswith("library_checks ")]
    assert len(library) == len(LIBRARY_CHECKS) >= 10
    points = sum(p for p, _, _ in LIBRARY_CHECKS.values())
    assert sum(scores["key"][n][1] for n in library) == points
    assert any(name.startswith(LESSON) for name in scores["key"])
    for name, (score, possible) in scores["key"].items():
        assert score == possible > 0, f"key, {name}: {score}/{possible}"
    for name, (score, possible) in scores["stub"].items():
        assert score == 0 < possible, f"stub, {name}: {score}/{possible}"
    graded = course / "autograded" / "stub" / "vae" / "minivae"
    assert (graded / "checks.py").read_text() == (source / "minivae" / "checks.py").read_text()

    nbgrader(course, "generate_feedback", "vae", "--force")
    assert (course / "feedback" / "stub" / "vae" / "library_checks.html").is_file()
