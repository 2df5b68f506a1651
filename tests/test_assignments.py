"""The student edition (python -m minivae assign) and the grader (python -m minivae grade).

To stay quick, grading runs use ``--only``: the library checks plus one small lesson. Tests that
run notebooks or the grader in other processes are marked slow.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minivae.checks import LIBRARY_EXERCISES
from minivae.course.answers import ANSWERS
from minivae.course.edition import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    TASKS,
    AssignmentError,
    _marked_functions,
    stub_source,
)
from minivae.course.library_checks import LIBRARY_CHECKS

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
LESSON = "05_reparameterization"  # small and quick in smoke mode; it has two graded exercises


def run(*args, cwd=None):
    """``python -m minivae ARGS`` in a fresh process; returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "minivae", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=600,
    )


def grade(folder, tmp_path, *only):
    """Grade ``folder`` (only the given names); returns (scores by name, printed output)."""
    scores_file = tmp_path / f"scores-{len(list(tmp_path.glob('scores-*')))}.json"
    proc = run("grade", folder, "--json", scores_file, "--only", *only)
    assert proc.returncode == 0, proc.stderr
    scores = {s["name"]: s for s in json.loads(scores_file.read_text())}
    return scores, proc.stdout


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    """A student edition and an answer key, each built once for this module."""
    base = tmp_path_factory.mktemp("editions")
    student, key = base / "student", base / "key"
    proc = run("assign", student)
    assert proc.returncode == 0, proc.stderr
    proc = run("assign", key, "--with-solutions")
    assert proc.returncode == 0, proc.stderr
    return student, key


# -- stubbing ------------------------------------------------------------------------------------
def test_stub_keeps_the_code_around_the_answer_and_its_indentation():
    source = "\n".join(
        [
            "def f(x):",
            '    """Doc."""',
            "    y = 1",
            "    ### BEGIN SOLUTION",
            "    y = 2 * x",
            "    ### END SOLUTION",
            "    return y",
        ]
    )
    stub = stub_source(source)
    assert stub.split("\n") == [
        "def f(x):",
        '    """Doc."""',
        "    y = 1",
        "    # YOUR CODE HERE",
        "    raise NotImplementedError('f is yours to write.')",
        "    return y",
    ]
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="f is yours to write"):
        namespace["f"](3)
    answer = stub_source(source, keep_solutions=True)  # the answer key: the markers go
    assert answer == source.replace("    ### BEGIN SOLUTION\n", "").replace(
        "    ### END SOLUTION\n", ""
    )


def test_stub_removes_hidden_tests():
    source = "check(1)\n### BEGIN HIDDEN TESTS\ncheck(2)\n### END HIDDEN TESTS\ncheck(3)"
    assert stub_source(source) == "check(1)\ncheck(3)"
    assert stub_source(source, keep_solutions=True) == "check(1)\ncheck(3)"


@pytest.mark.parametrize(
    "source",
    [
        "### BEGIN SOLUTION\nx = 1",
        "x = 1\n### END SOLUTION",
        "### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END SOLUTION",
        "### BEGIN SOLUTION\nx = 1\n### END HIDDEN TESTS",
    ],
)
def test_unbalanced_markers_are_refused(source):
    with pytest.raises(AssignmentError, match="line"):
        stub_source(source, "somewhere")


# -- the student edition -------------------------------------------------------------------------
@pytest.mark.slow
def test_student_notebooks_have_stubs_and_no_answers_hidden_tests_or_outputs(editions):
    student, _ = editions
    sources = sorted((ROOT / "lessons").glob("*.ipynb"))
    assert sorted(p.name for p in (student / "lessons").glob("*.ipynb")) == [
        p.name for p in sources
    ]
    had_hidden = False
    for source in sources:
        original = nbformat.read(source, as_version=4)
        nb = nbformat.read(student / "lessons" / source.name, as_version=4)
        assert len(nb.cells) == len(original.cells)
        for cell, orig in zip(nb.cells, original.cells):
            had_hidden |= BEGIN_HIDDEN in orig.source
            assert BEGIN_SOLUTION not in cell.source and BEGIN_HIDDEN not in cell.source
            assert cell.metadata.get("nbgrader") == orig.metadata.get("nbgrader")
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
                if (cell.metadata.get("nbgrader") or {}).get("solution"):
                    assert "raise NotImplementedError(" in cell.source
                    assert "of this lesson, in this cell." in cell.source, cell.source
        assert nb.metadata == original.metadata, "the edition keeps JupyterLab's metadata"
        assert (student / "lessons" / source.name).read_bytes().endswith(b"}\n")
    assert had_hidden, "no lesson has hidden tests, so their removal was not tested"
    readme = (student / "README.md").read_text()
    assert 'PYTHONPATH="$PWD" jupyter lab\n' in readme, "JupyterLab starts at the edition's root"
    assert "jupyter lab lessons" not in readme
    for name, (_, lesson, exercise) in LIBRARY_EXERCISES.items():
        assert f"`{name}` (lesson {lesson}, exercise {exercise})" in readme


@pytest.mark.slow
def test_a_stub_in_a_notebook_names_its_function_and_exercise(editions):
    student, _ = editions
    nb = nbformat.read(student / "lessons" / "02_autoencoder.ipynb", as_version=4)
    stub = next(c.source for c in nb.cells if "def bernoulli_recon_loss" in c.source)
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError) as caught:
        namespace["bernoulli_recon_loss"](None, None)
    assert str(caught.value) == (
        "bernoulli_recon_loss is yours to write: exercise 1 of this lesson, in this cell."
    )


def _first_cell(edition, lesson, minivae_from):
    """Run a lesson's first code cell as its kernel would (in lessons/), importing minivae from
    the folder ``minivae_from``; returns the finished process."""
    nb = nbformat.read(edition / "lessons" / lesson, as_version=4)
    setup = next(c.source for c in nb.cells if c.cell_type == "code")
    return subprocess.run(
        [sys.executable, "-c", setup],
        capture_output=True,
        text=True,
        cwd=edition / "lessons",
        env=dict(os.environ, PYTHONPATH=str(minivae_from), MINIVAE_LESSON_MODE="smoke"),
        timeout=300,
    )


@pytest.mark.slow
def test_a_student_lesson_says_in_its_first_cell_which_library_function_to_write(editions):
    student, _ = editions
    proc = _first_cell(student, "02_autoencoder.ipynb", minivae_from=student)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().split("\n")
    assert lines[:2] == [
        "Linear.backward in minivae/nn.py is not written yet (lesson 1, exercise 3): the cells "
        "of this lesson that use it will stop until it is.",
        "Adam.update in minivae/optim.py is not written yet (lesson 1, exercise 3): the cells "
        "of this lesson that use it will stop until it is.",
    ]
    nb = nbformat.read(student / "lessons" / "02_autoencoder.ipynb", as_version=4)
    setup = next(c.source for c in nb.cells if c.cell_type == "code")
    declared = re.findall(r'"([\w.]+)"', setup[setup.index("library_written(") :].split(")")[0])
    assert "bernoulli_nll" in declared  # lesson 2 asks for it itself (exercise 5)
    assert lines == [
        f"{name} in {LIBRARY_EXERCISES[name][0]} is not written yet (lesson "
        f"{LIBRARY_EXERCISES[name][1]}, exercise {LIBRARY_EXERCISES[name][2]}): the cells of "
        "this lesson that use it will stop until it is."
        for name in declared
    ]


def test_every_library_exercise_is_asked_for_by_its_lesson():
    marked = []
    for path in sorted((ROOT / "minivae").glob("*.py")):
        marked += _marked_functions(path.read_text())
    assert sorted(marked) == sorted(LIBRARY_EXERCISES), "each stubbed function has its exercise"
    for name, (file, lesson, exercise) in LIBRARY_EXERCISES.items():
        assert name.split(".")[-1] in (ROOT / file).read_text()
        path = next((ROOT / "lessons").glob(f"{lesson:02d}_*.ipynb"))
        headings = [
            c.source
            for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == "markdown" and c.source.startswith(f"### Exercise {exercise} ")
        ]
        assert headings and name in headings[0], f"{path.name} exercise {exercise} asks for {name}"


STUB_CALLS = """
import numpy as np, minivae as mv
from minivae import checks
assert mv.__file__.startswith(FOLDER), mv.__file__
assert "dL/dW" in mv.nn.Linear.backward.__doc__  # docstrings are kept
ones = np.ones((1, 2))
vae = mv.VAE(2, hidden=[], latent_dim=1, seed=0, dtype="float64")
vae._cache = (ones, np.ones((1, 1)), np.ones((1, 1)))  # what VAE.loss would have left
prior = mv.diffusion.LatentDiffusion(2, hidden=[2], steps=10, time_dim=2, dtype="float64")
prior.net(np.ones((1, 4)))
prior._cache = ones  # what the loss would have left
special = {"VAE.backward": vae.backward, "LatentDiffusion.backward": prior.backward}
for name in checks.LIBRARY_EXERCISES:
    try:
        special[name]() if name in special else checks._probe(name)
    except NotImplementedError as err:
        print("stub", name, "|", err)
    else:
        raise SystemExit(name + " is not a stub")
"""


@pytest.mark.slow
def test_student_library_is_importable_and_its_stubs_raise(editions):
    """Every library exercise is a stub in the student edition (each one, called alone, raises
    NotImplementedError), and each stub names the lesson and exercise that ask for it."""
    student, _ = editions
    for path in (student / "minivae").glob("*.py"):
        lines = [line.strip() for line in path.read_text().split("\n")]
        assert BEGIN_SOLUTION not in lines, f"{path.name} still holds a solution"
    proc = subprocess.run(
        [sys.executable, "-c", f"FOLDER = {str(student)!r}\n{STUB_CALLS}"],
        capture_output=True,
        text=True,
        cwd=student,
        env=dict(os.environ, PYTHONPATH=str(student), MPLBACKEND="Agg"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("stub ") == len(LIBRARY_EXERCISES)
    assert "| Linear.backward is yours to write: lesson 1, exercise 3." in proc.stdout
    for name, (_, lesson, exercise) in LIBRARY_EXERCISES.items():  # each names its exercise
        assert f"stub {name} | {name} is yours to write: lesson {lesson}, exercise {exercise}." in (
            proc.stdout
        )


def test_every_exercise_says_which_library_functions_answer_it():
    """The table of answers covers every exercise of every lesson, and every library function
    that answers one is a library exercise (stubbed in a student edition)."""
    exercises = set()
    for path in sorted((ROOT / "lessons").glob("*.ipynb")):
        lesson = int(path.name[:2])
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                for number in re.findall(r"^### Exercise (\d+) ", cell.source, re.MULTILINE):
                    exercises.add((lesson, int(number)))
    assert set(ANSWERS) == exercises
    named = set()
    for key, value in ANSWERS.items():
        if isinstance(value, str):
            assert value.startswith("no library function computes it"), key
        else:
            assert value and set(value) <= set(LIBRARY_EXERCISES), key
            named |= set(value)
    assert named == set(LIBRARY_EXERCISES)
    for name, (_, lesson, exercise) in LIBRARY_EXERCISES.items():  # its own exercise lists it
        assert name in ANSWERS[(lesson, exercise)], name


def test_every_stubbed_library_function_has_a_task_for_its_docstring():
    from minivae.course.edition import _task_docstrings

    source = 'def halve(x):\n    """x / 2"""\n    ### BEGIN SOLUTION\n    return x / 2\n'
    with pytest.raises(AssignmentError) as caught:
        _task_docstrings(source + "    ### END SOLUTION\n", ["halve"])
    assert str(caught.value) == "halve holds a solution but edition.TASKS has no task for it"
    marked = []
    for path in sorted((ROOT / "minivae").glob("*.py")):
        marked += _marked_functions(path.read_text())
    assert sorted(marked) == sorted(TASKS)
    for name, (_, lesson, _) in LIBRARY_EXERCISES.items():
        assert f"Lesson {lesson}" in TASKS[name], name


@pytest.mark.slow
def test_the_student_edition_stands_alone_without_answers_or_grader(editions):
    student, _ = editions
    assert not (student / "minivae" / "course").exists(), "the grader is not shipped"
    assert not (student / "minivae" / "assignments.py").exists()
    assert not (student / "minivae" / "_numba_kernels.py").exists(), "a compiled Adam, whole"
    assert not (student / "minivae" / "_cupy_kernels.py").exists(), "a GPU Adam, whole"
    assert "sqrt(v" not in (student / "minivae" / "fast.py").read_text(), "no Adam in fast.py"
    requirements = (student / "requirements.txt").read_text().split("\n")
    names = {r.split(">")[0].split("=")[0].strip() for r in requirements if r and r[0] != "#"}
    assert {"numpy", "matplotlib", "jupyterlab", "ipykernel"} <= names
    assert "minivae" not in names, "installing minivae would shadow the student's copy"
    readme = (student / "README.md").read_text()
    assert "pip install -r requirements.txt" in readme and "cd lessons && " in readme
    for path in (student / "minivae").rglob("*.py"):
        text = path.read_text()
        assert "kingma & ba (2015), algorithm 1" not in text.lower(), path
    answers = [  # derivations the instructor's docstrings hold, and lines of the answers
        ("nn.py", "xᵀ·dout"),
        ("sampling.py", "dz · ε · ½σ"),
        ("losses.py", "½ (σ² − 1)"),
        ("losses.py", "= σ(l) − x"),
        ("losses.py", "2λ(x̂ − x)"),
        ("losses.py", "p_k − [k = y]"),
        ("losses.py", "xp.log1p(xp.exp(-xp.abs(logits)))"),
        ("models.py", "two paths reach μ"),
        ("models.py", "self.sampler.backward(dz)"),
        ("models.py", "== xp.astype(labels, xp.int64)"),
        ("evaluate.py", "½(σ_j² + μ_j² − log σ_j² − 1)"),
        ("evaluate.py", "xp.var(mu, axis=0)"),
        ("evaluate.py", "log_qz = "),
        ("plots.py", "(1 - t)[:, None] * mu[0]"),
        ("metrics.py", "- 2.0 * (a @ b.T)"),
        ("diffusion.py", "2·(ε̂ − ε)/B"),
        ("diffusion.py", "2.0 * diff / diff.shape[0]"),
        ("diffusion.py", "beta / math.sqrt(1.0 - alpha_bar) * eps_hat"),
    ]
    for name, formula in answers:
        assert formula in (ROOT / "minivae" / name).read_text(), (name, formula)
        assert formula not in (student / "minivae" / name).read_text(), f"{name} gives it away"
    assert "Lesson 1, exercise 3 asks for it" in (student / "minivae" / "nn.py").read_text()


@pytest.mark.slow
@pytest.mark.slow
def test_a_lesson_says_when_its_kernel_imports_another_minivae(editions):
    """The first cell, run where a kernel runs (lessons/), with the instructor's minivae on the
    path in place of the edition's copy: it says so, and names the edition's folder."""
    student, _ = editions
    proc = _first_cell(student, "01_layers_by_hand.ipynb", minivae_from=ROOT)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.strip().split("\n")[0]
    assert first.startswith(f"This kernel imports minivae from {ROOT / 'minivae'}"), first
    assert str(student / "minivae") in first and "do not pip-install minivae" in first


@pytest.mark.slow
def test_keep_library_copies_the_library_unchanged_and_grades_only_notebooks(tmp_path):
    lessons = tmp_path / "lessons"  # one lesson, so grading everything stays quick
    lessons.mkdir()
    shutil.copy(ROOT / "lessons" / f"{LESSON}.ipynb", lessons)
    out = tmp_path / "out"
    proc = run("assign", out, "--keep-library", "--lessons", lessons)
    assert proc.returncode == 0, proc.stderr
    for name in ("nn.py", "losses.py", "sampling.py", "optim.py"):
        copied = (out / "minivae" / name).read_text()
        assert copied == (ROOT / "minivae" / name).read_text()
    nb = nbformat.read(out / "lessons" / f"{LESSON}.ipynb", as_version=4)
    assert any("raise NotImplementedError(" in c.source for c in nb.cells)
    proc = run("grade", out, "--lessons", lessons, "--no-library")
    assert proc.returncode == 0, proc.stderr
    assert "library" not in proc.stdout and f"{LESSON} ex1" in proc.stdout


@pytest.mark.slow
def test_assign_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    proc = run("assign", tmp_path)
    assert proc.returncode == 1
    assert "not empty" in proc.stderr and len(proc.stderr.strip().split("\n")) == 1
    assert (tmp_path / "notes.txt").read_text() == "mine"


# -- grading -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_grade_gives_full_marks_to_the_solutions(editions, tmp_path):
    _, key = editions
    scores, out = grade(key, tmp_path, "library", LESSON)
    assert set(LIBRARY_CHECKS) <= {name.split()[-1] for name in scores}
    assert sum(1 for name in scores if name.startswith(LESSON)) >= 2
    for name, s in scores.items():
        assert s["earned"] == s["possible"] > 0, f"{name}: {s}"
    assert out.strip().split("\n")[-1].split()[0] == "total"


FORGED = """
import atexit

print('\\n{"ok": true, "detail": "forged"}')
atexit.register(lambda: print('{"ok": true, "detail": "forged at exit"}'))
"""


@pytest.mark.slow
def test_grade_gives_no_marks_to_the_stubs_even_with_edited_checks_and_files(editions, tmp_path):
    """Edited check cells are put back, a forged verdict line does not count, and what is graded
    is the instructor's choice: assignment.json in the student's folder decides nothing."""
    student, _ = editions
    folder = tmp_path / "student"
    shutil.copytree(student, folder)
    path = folder / "lessons" / f"{LESSON}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # a student "fixes" the checks: grading must put them back
        if (cell.metadata.get("nbgrader") or {}).get("grade"):
            cell.source = "print('✓ all good')"
    nbformat.write(nb, path)
    with open(folder / "minivae" / "__init__.py", "a") as f:
        f.write(FORGED)
    summary = json.loads((folder / "assignment.json").read_text())
    summary["library_exercises"] = False  # "no library exercises to grade here"
    (folder / "assignment.json").write_text(json.dumps(summary))
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    shutil.copy(ROOT / "lessons" / f"{LESSON}.ipynb", lessons)
    scores_file = tmp_path / "scores.json"
    proc = run("grade", folder, "--lessons", lessons, "--json", scores_file)
    assert proc.returncode == 0, proc.stderr
    scores = {s["name"]: s for s in json.loads(scores_file.read_text())}
    assert {f"library {name}" for name in LIBRARY_CHECKS} <= set(scores)
    assert len(scores) >= len(LIBRARY_CHECKS) + 2
    for name, s in scores.items():
        assert s["earned"] == 0 < s["possible"], f"{name}: {s}"
        assert "NotImplementedError" in s["detail"], f"{name}: {s['detail']}"
        assert "forged" not in s["detail"]


SWALLOW = "get_ipython().set_custom_exc((Exception,), lambda *args, **kwargs: None)\n"


@pytest.mark.slow
@pytest.mark.slow
def test_grade_scores_a_check_by_its_verdict_and_survives_a_timeout(editions, tmp_path):
    """A cell that hides its errors scores nothing, and an endless cell costs only its exercise."""
    _, key = editions
    folder = tmp_path / "key"
    shutil.copytree(key, folder)
    lesson = "06_kl_divergence"
    path = folder / "lessons" / f"{lesson}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        if gid == "ex1_solution":  # an answer that never returns: its check cell times out
            cell.source = "import time\n\n" + cell.source.replace(
                "def kl_diag(mu, logvar):\n", "def kl_diag(mu, logvar):\n    time.sleep(600)\n"
            )
        if gid == "ex2_solution":  # a wrong answer, and a handler that hides every error
            cell.source = SWALLOW + cell.source.replace("return float(", "return 1 + float(")
    nbformat.write(nb, path)
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    shutil.copy(ROOT / "lessons" / f"{lesson}.ipynb", lessons)
    scores_file = tmp_path / "scores.json"
    proc = run(
        "grade",
        folder,
        "--lessons",
        lessons,
        "--no-library",
        "--timeout",
        "20",
        "--json",
        scores_file,
    )
    assert proc.returncode == 0, proc.stderr
    scores = {s["name"]: s for s in json.loads(scores_file.read_text())}
    ex1, ex2, ex3 = (scores[f"{lesson} ex{i}"] for i in (1, 2, 3))
    assert ex1["earned"] == 0 and "did not finish within 20 s" in ex1["detail"], ex1
    assert ex2["earned"] == 0 and "did not reach their verdict" in ex2["detail"], ex2
    assert ex3["earned"] == ex3["possible"] > 0, ex3


@pytest.mark.slow
@pytest.mark.slow
def test_grade_a_class_with_a_table_and_feedback_files(editions, tmp_path):
    student, key = editions
    klass = tmp_path / "class"
    shutil.copytree(key, klass / "ada")
    shutil.copytree(student, klass / "bob")
    (klass / "notes").mkdir()  # not a student's folder: skipped
    table, feedback = tmp_path / "grades.csv", tmp_path / "feedback"
    proc = run(
        "grade", "--class", klass, "--only", "library", "--csv", table, "--feedback", feedback
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(table.open()))
    assert [r["student"] for r in rows] == ["ada", "bob"]
    points = str(sum(p for p, _, _ in LIBRARY_CHECKS.values()))
    assert rows[0]["total"] == rows[0]["possible"] == points and rows[1]["total"] == "0"
    assert rows[1]["library linear_backward"] == "0"
    bob = (feedback / "bob.md").read_text()
    assert f"Total: 0 / {points}" in bob and "lesson 1, exercise 3" in bob
    assert f"Total: {points} / {points}" in (feedback / "ada.md").read_text()


PLANTED = '''

def _planted_backward(self, dout, input_grad=True):
    """A planted mistake: dL/dW twice too large."""
    x = self.cache
    self.W.grad += 2 * (x.T @ dout)
    self.b.grad += dout.sum(axis=0)
    return dout @ self.W.data.T if input_grad else None


Linear.backward = _planted_backward
'''


@pytest.mark.slow
def test_grade_gives_partial_marks_and_the_relative_error_for_a_wrong_gradient(editions, tmp_path):
    _, key = editions
    folder = tmp_path / "planted"
    shutil.copytree(key, folder)
    with open(folder / "minivae" / "nn.py", "a") as f:
        f.write(PLANTED)
    scores, out = grade(folder, tmp_path, "library")
    wrong = scores["library linear_backward"]
    assert wrong["earned"] == 0 < wrong["possible"]
    assert "relative error" in wrong["detail"] and "dL/dW" in wrong["detail"]
    line = next(ln for ln in out.split("\n") if ln.startswith("library linear_backward"))
    assert "relative error 3.33e-01" in line  # |2g − g| / (|2g| + |g|) = 1/3
    others = [s for name, s in scores.items() if name != "library linear_backward"]
    assert others and all(s["earned"] == s["possible"] for s in others)
    earned = sum(s["earned"] for s in scores.values())
    assert 0 < earned < sum(s["possible"] for s in scores.values())


HALF_MISSING = """

def _kl_without_half(mu, logvar):
    \"\"\"A planted mistake: the KL without its ½ (gradients likewise).\"\"\"
    import numpy as np

    var, B = np.exp(logvar), mu.shape[0]
    return float(np.sum(var + mu**2 - logvar - 1.0)) / B, 2 * mu / B, (var - 1.0) / B


kl_standard_normal = _kl_without_half
"""


@pytest.mark.slow
def test_grade_names_a_missing_half_in_the_kl_without_printing_its_value(editions, tmp_path):
    import numpy as np

    import minivae as mv
    from minivae.course.library_checks import run_check

    _, key = editions
    folder = tmp_path / "half"
    shutil.copytree(key, folder)
    with open(folder / "minivae" / "losses.py", "a") as f:
        f.write(HALF_MISSING)
    result = run_check(folder, "kl_standard_normal", timeout=120)
    assert result["ok"] is False
    assert "factor ½ is missing" in result["detail"], result
    rng = np.random.default_rng(1)  # the check's own inputs: their KL is not in the message
    mu, logvar = rng.normal(size=(6, 4)), rng.normal(scale=0.8, size=(6, 4))
    value = mv.losses.kl_standard_normal(mu, logvar)[0]
    assert f"{value:.4g}" not in result["detail"] and f"{value:.6g}" not in result["detail"]


@pytest.mark.slow
def test_grade_refuses_bad_input_with_one_line(tmp_path):
    cases = [
        ((tmp_path / "missing",), "is not a folder"),
        ((tmp_path,), "is not a student edition"),  # holds neither lessons/ nor minivae/
        ((ROOT, "--only", "no_such_exercise"), "unknown name(s) for --only"),
        ((ROOT, "--timeout", "0"), "--timeout must be a positive number of seconds, got 0.0"),
        (("--class", tmp_path / "missing"), "not a folder"),
        ((), "name a student's FOLDER to grade, or a class with --class DIR"),
    ]
    for args, words in cases:
        proc = run("grade", *args)
        assert proc.returncode != 0, args
        assert len(proc.stderr.strip().split("\n")) == 1, proc.stderr
        assert "error" in proc.stderr and words in proc.stderr, proc.stderr


REBINDING_AND_OFF_BY_ONE = '''

def _rebinding_backward(self, dout, input_grad=True):
    """A planted mistake: new gradient arrays instead of adding into the parameter's own."""
    x = self.cache
    self.W.grad = self.W.grad + x.T @ dout
    self.b.grad = self.b.grad + dout.sum(axis=0)
    return dout @ self.W.data.T if input_grad else None


def _off_by_one_update(self, theta, g, m, v):
    """A planted mistake: the bias correction of step t − 1 (0 at the first step: NaN)."""
    import numpy as np

    t = self.t - 1
    m *= self.beta1
    m += (1.0 - self.beta1) * g
    v *= self.beta2
    v += (1.0 - self.beta2) * g * g
    with np.errstate(all="ignore"):
        theta -= self.lr * (m / (1 - self.beta1**t)) / (np.sqrt(v / (1 - self.beta2**t)) + self.eps)
'''


@pytest.mark.slow
def test_grade_refuses_a_rebound_gradient_and_a_nan_adam(editions, tmp_path):
    _, key = editions
    folder = tmp_path / "planted"
    shutil.copytree(key, folder)
    with open(folder / "minivae" / "nn.py", "a") as f:
        f.write(REBINDING_AND_OFF_BY_ONE + "\n\nLinear.backward = _rebinding_backward\n")
    with open(folder / "minivae" / "optim.py", "a") as f:
        f.write(REBINDING_AND_OFF_BY_ONE + "\n\nAdam.update = _off_by_one_update\n")
    scores, out = grade(folder, tmp_path, "library")
    linear, adam = scores["library linear_backward"], scores["library adam_step"]
    assert linear["earned"] == 0 < linear["possible"]
    assert "gives W a new gradient array" in linear["detail"]
    assert "self.W.grad += ..." in linear["detail"]
    assert adam["earned"] == 0 < adam["possible"]
    assert "relative error nan" in adam["detail"]
    assert "t − 1" in adam["detail"], "the hint names the off-by-one step"
    others = [s for name, s in scores.items() if name not in (linear["name"], adam["name"])]
    assert others and all(s["earned"] == s["possible"] for s in others)


# -- the library checks against the wrong answers students write ----------------------------------
def _softplus_naive(mv):
    def bernoulli_log_prob(logits, x):  # log(1 + eˡ) written as it reads: overflows at l = 1e4
        with np.errstate(all="ignore"):
            return np.sum(x * logits - np.log(1.0 + np.exp(logits)), axis=1)

    return mv.losses, "bernoulli_log_prob", bernoulli_log_prob


def _nll_summed(mv):
    right = mv.losses.bernoulli_nll

    def bernoulli_nll(logits, x):
        value, grad = right(logits, x)
        return value * logits.shape[0], grad

    return mv.losses, "bernoulli_nll", bernoulli_nll


def _gaussian_no_constant(mv):
    def gaussian_nll(x_mean, x, lam=0.5):
        B = x.shape[0]
        return lam * np.sum((x_mean - x) ** 2) / B, 2 * lam * (x_mean - x) / B

    return mv.losses, "gaussian_nll", gaussian_nll


def _softmax_no_shift(mv):
    def softmax_cross_entropy(logits, labels):
        B = logits.shape[0]
        with np.errstate(all="ignore"):
            p = np.exp(logits) / np.sum(np.exp(logits), axis=1, keepdims=True)
            onehot = np.eye(logits.shape[1])[labels]
            return -np.sum(onehot * np.log(p)) / B, (p - onehot) / B

    return mv.losses, "softmax_cross_entropy", softmax_cross_entropy


def _accuracy_count(mv):
    def accuracy(self, x, labels):  # the number right, not the fraction
        return float(np.sum(np.argmax(self.forward(x), axis=1) == labels))

    return mv.models.Classifier, "accuracy", accuracy


def _kl_element_no_half(mv):
    def kl_per_element(mu, logvar):
        return np.exp(logvar) + mu * mu - logvar - 1.0

    return mv.losses, "kl_per_element", kl_per_element


def _loss_without_beta(mv):
    right = mv.models.VAE.loss

    def loss(self, x, eps=None, check=True):
        terms = right(self, x, eps=eps, check=check)
        return type(terms)(total=terms.recon + terms.kl, recon=terms.recon, kl=terms.kl)

    return mv.models.VAE, "loss", loss


def _backward_one_path(mv):
    def backward(self, input_grad=False):  # the KL's gradients never reach μ and log σ²
        dout, _, _ = self._cache
        dmu, dlogvar = self.sampler.backward(self.decoder.backward(dout))
        dh = self.mu_head.backward(dmu) + self.logvar_head.backward(
            self.logvar_clamp.backward(dlogvar)
        )
        return self.encoder.backward(dh, input_grad=input_grad)

    return mv.models.VAE, "backward", backward


def _log_weights_no_2pi(mv):
    right = mv.evaluate.log_weights

    def log_weights(model, xb, mu, logvar, eps):  # log 2π dropped from log p(z) only
        return right(model, xb, mu, logvar, eps) + 0.5 * eps.shape[2] * np.log(2 * np.pi)

    return mv.evaluate, "log_weights", log_weights


def _activity_as_std(mv):
    right = mv.evaluate.latent_activity

    def latent_activity(model, x, batch_size=1000):
        return np.sqrt(right(model, x, batch_size))

    return mv.evaluate, "latent_activity", latent_activity


def _interpolation_without_end(mv):
    decode, image_grid = mv.plots._decode, mv.plots.image_grid

    def interpolation(model, x_a, x_b, n_steps=10, image_shape=(28, 28)):
        mu = mv.plots._means(model, np.stack([np.ravel(x_a), np.ravel(x_b)]))
        t = np.arange(n_steps)[:, None] / n_steps  # stops short of μ_b
        return image_grid(decode(model, (1 - t) * mu[0] + t * mu[1]), image_shape=image_shape)

    return mv.plots, "interpolation", interpolation


def _distances_transposed(mv):
    def squared_distances(a, b):
        return (np.sum(a * a, axis=1)[None, :] + np.sum(b * b, axis=1)[:, None] - 2 * b @ a.T).T

    return mv.metrics, "squared_distances", squared_distances


def _q_sample_variance(mv):
    def q_sample(self, z0, t, eps):  # the variance where its square root belongs
        a = self.coefficient(self.alpha_bar, t, z0)
        return np.sqrt(a) * z0 + (1.0 - a) * eps

    return mv.diffusion.Schedule, "q_sample", q_sample


def _ddpm_step_no_sqrt(mv):
    right = mv.diffusion.LatentDiffusion.ddpm_step

    def ddpm_step(self, z_t, t, eps_hat, noise):
        return right(self, z_t, t, eps_hat, 0.0 * noise) + noise * float(self.schedule.beta[t])

    return mv.diffusion.LatentDiffusion, "ddpm_step", ddpm_step


def _diffusion_backward_half(mv):
    def backward(self):  # dL/dε̂ without the 2 of the square
        self.net.backward(self._cache / self._cache.shape[0], input_grad=False)

    return mv.diffusion.LatentDiffusion, "backward", backward


@pytest.mark.parametrize(
    "check, plant, says",
    [
        ("reconstruction", _softplus_naive, "NaN or inf"),
        ("reconstruction", _nll_summed, "summed over the batch"),
        ("reconstruction", _gaussian_no_constant, "gaussian_nll, value"),
        ("classifier", _softmax_no_shift, "no overflow"),
        ("classifier", _accuracy_count, "Classifier.accuracy"),
        ("kl_standard_normal", _kl_element_no_half, "a factor ½ missing"),
        ("vae", _loss_without_beta, "total = recon + β·KL"),
        ("vae", _backward_one_path, "VAE.backward"),
        ("vae", _log_weights_no_2pi, "log_weights"),
        ("latents", _activity_as_std, "latent_activity"),
        ("latents", _interpolation_without_end, "interpolation"),
        ("distances", _distances_transposed, "squared_distances"),
        ("diffusion", _q_sample_variance, "Schedule.q_sample"),
        ("diffusion", _ddpm_step_no_sqrt, "ddpm_step"),
        ("diffusion", _diffusion_backward_half, "LatentDiffusion.backward"),
    ],
)
def test_a_library_check_fails_a_wrong_answer_and_says_where(check, plant, says, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import minivae as mv

    owner, attribute, wrong = plant(mv)
    LIBRARY_CHECKS[check][2](mv)  # the right answer passes
    monkeypatch.setattr(owner, attribute, wrong)
    with pytest.raises(AssertionError) as caught:
        LIBRARY_CHECKS[check][2](mv)
    assert says in str(caught.value), str(caught.value)


def test_each_library_exercise_is_graded_by_one_check():
    from minivae.course.library_checks import CHECKED

    assert set(CHECKED) == set(LIBRARY_CHECKS)
    names = [name for checked in CHECKED.values() for name in checked]
    assert sorted(names) == sorted(LIBRARY_EXERCISES), "each exactly once"
