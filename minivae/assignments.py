"""Assignments: the student edition of the lessons and library, and a grader for it.

Solutions are marked where they are written, with the markers nbgrader uses, so a course that
runs nbgrader can take the files as they are: the answer sits between a line ``### BEGIN
SOLUTION`` and a line ``### END SOLUTION``, indented like the code around it (see
``Linear.backward`` in ``minivae/nn.py``). Only lines that hold nothing but a marker count.

In a notebook, a solution cell carries ``{"nbgrader": {"solution": true, "grade_id": ...}}`` and a
check cell ``{"nbgrader": {"grade": true, "points": P, "grade_id": ...}}``; extra tests the
student should not see sit between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``.

``python -m minivae assign OUT`` (:func:`assign`) writes ``OUT/lessons/`` and ``OUT/minivae/`` with
every marked region replaced by a stub that raises ``NotImplementedError`` naming the function and
the exercise that asks for it, hidden tests removed and outputs cleared. ``python -m minivae grade
OUT`` (:func:`grade`) scores such a folder:

* the library exercises by a fixed list of checks run in a fresh Python process that imports the
  *student's* ``minivae`` (their copy comes first on ``sys.path``); the checks here use only NumPy
  and their own finite differences, so editing ``gradcheck.py`` or ``checks.py`` in the copy
  changes nothing;
* every notebook by executing it in smoke mode with its check cells put back from the instructor's
  notebooks (matched by ``grade_id``: hidden tests return, edited checks are undone) and with the
  instructor's ``minivae`` (so a library mistake costs points once, in the library checks). A check
  cell scores its points when it runs without an error.

This module imports nothing from minivae at load time: the grader loads it by path inside the
student's process, where ``minivae`` is the student's package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "LIBRARY_CHECKS",
    "LIBRARY_EXERCISES",
    "AssignmentError",
    "Score",
    "assign",
    "grade",
    "stub_source",
]

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
YOUR_CODE = "# YOUR CODE HERE"  # the first line of a stub; a raise naming the exercise follows

#: The library functions a course can ask students to write: name → (file, lesson, exercise).
#: The lesson's exercise of that number explains the function and checks it.
LIBRARY_EXERCISES = {
    "Linear.backward": ("minivae/nn.py", 1, 3),
    "Adam.update": ("minivae/optim.py", 1, 3),
    "GaussianSampler.backward": ("minivae/sampling.py", 5, 3),
    "kl_standard_normal": ("minivae/losses.py", 6, 4),
}

EDITION_FILE = "assignment.json"  # what assign wrote: edition, library exercises or not
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_LESSONS = PACKAGE_DIR.parent / "lessons"


class AssignmentError(ValueError):
    """Bad input to assign or grade (a missing folder, unbalanced markers); one-line message."""


# -- stubbing -----------------------------------------------------------------------------------
def stub_source(text: str, where: str = "source", keep_solutions: bool = False, todo=None) -> str:
    """``text`` with each solution region replaced by a stub and each hidden-test region removed.

    A region runs from a line ``### BEGIN SOLUTION`` to a line ``### END SOLUTION`` (markers and
    all). The stub is ``# YOUR CODE HERE`` and ``raise NotImplementedError(...)`` at the
    indentation of the BEGIN line, so it stays valid Python wherever the region was. The error's
    message is ``todo(name)``, where ``name`` is the function (``Class.method``) around the region,
    or None at the top level; by default it names the function and, for the library's own
    exercises, the lesson and exercise that ask for it. With ``keep_solutions`` (the answer key)
    the answers stay and only their marker lines go. Unbalanced or nested markers raise
    AssignmentError naming ``where`` and the line.
    """
    todo = todo or _library_todo
    out, state, start = [], None, 0
    stack = []  # (indent, name) of the class and def lines around the current line
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        marker = line.strip()
        if state is None:
            _enclosing(stack, line)
        if marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if state is not None:
                raise AssignmentError(
                    f"{where}, line {number}: {marker!r} inside the region opened on line {start}"
                )
            state, start = marker, number
            if marker == BEGIN_SOLUTION and not keep_solutions:
                indent = line[: len(line) - len(line.lstrip())]
                message = todo(".".join(n for _, n in stack) or None)
                out.append(indent + YOUR_CODE)
                out.append(indent + f"raise NotImplementedError({message!r})")
            continue
        if marker in (END_SOLUTION, END_HIDDEN):
            expected = END_SOLUTION if state == BEGIN_SOLUTION else END_HIDDEN
            if state is None or marker != expected:
                raise AssignmentError(f"{where}, line {number}: {marker!r} without its BEGIN line")
            state = None
            continue
        if state == BEGIN_HIDDEN or (state == BEGIN_SOLUTION and not keep_solutions):
            continue
        out.append(line)
    if state is not None:
        raise AssignmentError(f"{where}, line {start}: {state!r} is never closed")
    return "\n".join(out)


def _enclosing(stack: list, line: str) -> None:
    """Keep ``stack`` the (indent, name) of the class and def lines that enclose ``line``."""
    stripped = line.lstrip()
    indent = len(line) - len(stripped)
    if stripped and not stripped.startswith("#"):
        while stack and stack[-1][0] >= indent:
            stack.pop()
    match = re.match(r"(class|def|async def)\s+(\w+)", stripped)
    if match:
        stack.append((indent, match.group(2)))


def _library_todo(name) -> str:
    """The message of a stub: what to write and, for the library's exercises, where it is asked."""
    if name in LIBRARY_EXERCISES:
        _, lesson, exercise = LIBRARY_EXERCISES[name]
        return f"{name} is yours to write: lesson {lesson}, exercise {exercise}."
    return f"{name} is yours to write." if name else "This exercise is yours to write."


def _notebook_todo(title: str):
    """The stub message for a solution cell under the heading ``title`` ("Exercise 2 — ...")."""

    def todo(name):
        what = f"{name} is yours to write" if name else "This answer is yours to write"
        return f"{what}: {title} of this lesson, in this cell." if title else f"{what}."

    return todo


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _student_notebook(nb, where: str, keep_solutions: bool = False):
    """The student edition of one notebook (a copy): stubs, no hidden tests, no outputs."""
    import copy

    nb = copy.deepcopy(nb)
    title = ""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            match = re.search(r"^#+\s*(Exercise\s+\d+)", cell.source, re.MULTILINE)
            title = match.group(1).lower() if match else title
            continue
        if cell.cell_type != "code":
            continue
        source = cell.source
        if _nbgrader(cell).get("solution") and BEGIN_SOLUTION not in source and not keep_solutions:
            # nbgrader's rule: an unmarked solution cell is all answer
            source = "\n".join([BEGIN_SOLUTION, END_SOLUTION])
        todo = _notebook_todo(title)
        cell.source = stub_source(source, f"{where}, cell {i}", keep_solutions, todo)
        cell.outputs = []
        cell.execution_count = None
    return nb


def _lesson_paths(lessons: Path) -> list[Path]:
    if not lessons.is_dir():
        raise AssignmentError(
            f"no lessons folder at {lessons}: pass the instructor's lessons with --lessons DIR"
        )
    paths = sorted(lessons.glob("*.ipynb"))
    if not paths:
        raise AssignmentError(f"no .ipynb notebooks in {lessons}")
    return paths


def _library_files(package: Path):
    """Every file of the package worth copying (sources and data, no caches)."""
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


README = """# minivae — student edition

This folder holds your copy of the lessons (`lessons/`) and of the minivae library (`minivae/`).
Wherever a cell or a function says

    # YOUR CODE HERE
    raise NotImplementedError()

replace those two lines with your answer. Each exercise in a lesson is followed by a check cell:
run it, and it prints ✓ when your answer is right or says what is wrong (for a backward pass,
the relative error of your gradient against finite differences).

Work from this folder so that Python imports *your* copy of minivae, not an installed one, and
so that JupyterLab's file browser shows the lessons, the library and this README side by side:

    cd {name}
    PYTHONPATH="$PWD" jupyter lab
    PYTHONPATH="$PWD" python -c "import minivae; print(minivae.__file__)"   # should be in here

Then open `lessons/01_layers_by_hand.ipynb`. The links in the lessons (`../minivae/nn.py`, …)
open the library's files next to the notebook.

{library}
Grading (instructors): `python -m minivae grade {name}` prints a score per exercise.
"""

LIBRARY_TODO = """Functions of the library to write (the lessons explain each one):

{items}

Until you have written them, the lessons that train models with them say so in their first
cell, and stop at the first call.
"""


def assign(
    out_dir,
    lessons=None,
    keep_library: bool = False,
    with_solutions: bool = False,
    force: bool = False,
) -> dict:
    """Write the student edition into ``out_dir``; returns a summary (notebooks, stubbed functions).

    ``out_dir/lessons/*.ipynb``: solution regions stubbed, hidden tests removed, outputs cleared.
    ``out_dir/minivae/``: the package, with every marked region of its ``.py`` files stubbed
    (``keep_library`` copies it unchanged). ``out_dir/README.md``: how to work in the folder.
    ``out_dir/assignment.json``: the summary, which ``grade`` reads. ``with_solutions`` writes the
    answer key instead: the same layout with every answer kept (grading it gives full marks).
    """
    out = Path(out_dir)
    lessons = Path(lessons) if lessons is not None else DEFAULT_LESSONS
    if out.exists() and any(out.iterdir()) and not force:
        raise AssignmentError(f"{out} exists and is not empty (use --force to overwrite it)")
    import nbformat

    sources = _lesson_paths(lessons)
    notebooks = {}
    for path in sources:  # build everything first: a marker error writes nothing
        nb = nbformat.read(path, as_version=4)
        notebooks[path.name] = _student_notebook(nb, path.name, keep_solutions=with_solutions)
    library, stubbed, asked = {}, [], []
    for path in _library_files(PACKAGE_DIR):
        rel = path.relative_to(PACKAGE_DIR)
        if path.suffix == ".py" and not keep_library:
            text = path.read_text(encoding="utf-8")
            if BEGIN_SOLUTION in text or BEGIN_HIDDEN in text:
                library[rel] = stub_source(text, f"minivae/{rel}", with_solutions)
                functions = _marked_functions(text)
                stubbed += [f"minivae/{rel}: {f}" for f in functions]
                asked += [_asked(f"minivae/{rel}", f) for f in functions]
                continue
        library[rel] = path

    if out.exists() and force:
        for sub in ("lessons", "minivae"):
            shutil.rmtree(out / sub, ignore_errors=True)
    (out / "lessons").mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, out / "lessons" / name)
    for rel, content in library.items():
        target = out / "minivae" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_text(content, encoding="utf-8")
    todo = ""
    if stubbed and not with_solutions:
        todo = LIBRARY_TODO.format(items="\n".join(asked))
    (out / "README.md").write_text(README.format(name=out.name, library=todo), encoding="utf-8")
    summary = {
        "edition": "answer key" if with_solutions else "student",
        "library_exercises": not keep_library,
        "notebooks": sorted(notebooks),
        "stubbed": stubbed,
    }
    (out / EDITION_FILE).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def _asked(file: str, name: str) -> str:
    """A line of the student README's list: the function, and the exercise that asks for it."""
    if name in LIBRARY_EXERCISES:
        _, lesson, exercise = LIBRARY_EXERCISES[name]
        return f"- `{file}`: `{name}` (lesson {lesson}, exercise {exercise})"
    return f"- `{file}`: `{name}`"


def _marked_functions(text: str) -> list[str]:
    """Names (``Class.method`` or ``function``) of the functions that hold a solution region."""
    names, stack = [], []
    for line in text.split("\n"):
        _enclosing(stack, line)
        if line.strip() == BEGIN_SOLUTION:
            name = ".".join(n for _, n in stack)
            if name and name not in names:
                names.append(name)
    return names


# -- library checks (run inside the student's process) -----------------------------------------
# Each check takes the student's minivae module, returns a short detail on success and raises
# AssertionError (its first line is what the grader prints) on failure. They use NumPy and their
# own finite differences only.


def _numgrad(f, x, h=1e-5):
    import numpy as np

    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f()
        x[idx] = old - h
        down = f()
        x[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad


def _rel(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"gradient has shape {a.shape}, expected {b.shape}")
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a)) + np.max(np.abs(b))))


def _gradient_verdict(what: str, errors: dict, tol: float = 1e-6) -> str:
    worst = max(errors, key=lambda k: errors[k] if errors[k] == errors[k] else float("inf"))
    if not errors[worst] <= tol:
        raise AssertionError(
            f"{what}: gradient check failed, relative error {errors[worst]:.2e} in {worst} "
            f"(should be below {tol:.0e})"
        )
    return f"relative error {errors[worst]:.1e}"


def _host(a):
    import numpy as np

    if a is None:
        raise AssertionError("returned None (a missing `return`?)")
    return np.asarray(a, dtype=np.float64)


def _check_linear_backward(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(0)
    layer = mv.nn.Linear(5, 4, seed=0, dtype="float64")
    x, dout = rng.normal(size=(6, 5)), rng.normal(size=(6, 4))
    W, b = np.array(layer.W.data, dtype=np.float64), np.array(layer.b.data, dtype=np.float64)
    layer.zero_grad()
    grads = {"W": layer.W.grad, "b": layer.b.grad}
    layer(x)
    dx = _host(layer.backward(dout))
    for attr, grad in grads.items():
        if getattr(layer, attr).grad is not grad:
            raise AssertionError(
                f"Linear.backward gives {attr} a new gradient array (self.{attr}.grad = ...); "
                f"add into the one it has in place: self.{attr}.grad += ..."
            )

    def F():
        return float(np.sum((x @ W + b) * dout))

    num = {"dL/dx": _numgrad(F, x), "dL/dW": _numgrad(F, W), "dL/db": _numgrad(F, b)}
    got = {"dL/dx": dx, "dL/dW": _host(layer.W.grad), "dL/db": _host(layer.b.grad)}
    detail = _gradient_verdict("Linear.backward", {k: _rel(got[k], num[k]) for k in num})
    layer(x)
    layer.backward(dout)
    if not _rel(_host(layer.W.grad), 2 * num["dL/dW"]) <= 1e-6:
        raise AssertionError(
            "Linear.backward must add into W.grad (+=), not overwrite it: after two backward "
            "calls without zero_grad the gradient should be twice as large"
        )
    return detail


def _check_kl(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(1)
    mu, logvar = rng.normal(size=(6, 4)), rng.normal(scale=0.8, size=(6, 4))

    def exact():
        return 0.5 * float(np.sum(np.exp(logvar) + mu**2 - logvar - 1.0)) / mu.shape[0]

    result = mv.losses.kl_standard_normal(mu.copy(), logvar.copy())
    if not isinstance(result, tuple) or len(result) != 3:
        raise AssertionError("kl_standard_normal must return (value, dmu, dlogvar)")
    value, dmu, dlogvar = result
    expected = exact()
    if not abs(float(value) - expected) <= 1e-9 * max(1.0, abs(expected)):
        raise AssertionError(
            f"kl_standard_normal: value {float(value):.6g}, expected {expected:.6g} "
            "(½ Σ (σ² + μ² − log σ² − 1), averaged over the batch)"
        )
    errors = {
        "dmu": _rel(_host(dmu), _numgrad(exact, mu)),
        "dlogvar": _rel(_host(dlogvar), _numgrad(exact, logvar)),
    }
    return _gradient_verdict("kl_standard_normal", errors)


def _check_sampler(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(2)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(scale=0.5, size=(5, 3))
    eps, dz = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    sampler = mv.sampling.GaussianSampler(seed=0)
    sampler(mu.copy(), logvar.copy(), eps=eps.copy())
    result = sampler.backward(dz.copy())
    if not isinstance(result, tuple) or len(result) != 2:
        raise AssertionError("GaussianSampler.backward must return (dmu, dlogvar)")

    def F():
        return float(np.sum((mu + np.exp(0.5 * logvar) * eps) * dz))

    errors = {
        "dmu": _rel(_host(result[0]), _numgrad(F, mu)),
        "dlogvar": _rel(_host(result[1]), _numgrad(F, logvar)),
    }
    return _gradient_verdict("GaussianSampler.backward", errors)


def _check_adam_step(mv) -> str:
    import numpy as np

    rng = np.random.default_rng(3)
    shapes, lr, b1, b2, eps = [(3, 2), (4,)], 0.05, 0.8, 0.95, 1e-8
    start = [rng.normal(size=s) for s in shapes]
    params = [mv.nn.Parameter(a.copy(), f"p{i}") for i, a in enumerate(start)]
    opt = mv.Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    theta = [a.copy() for a in start]
    m = [np.zeros(s) for s in shapes]
    v = [np.zeros(s) for s in shapes]
    for t in range(1, 4):
        grads = [rng.normal(size=s) for s in shapes]
        arrays = [p.data for p in params]
        for p, g in zip(params, grads):
            p.grad[...] = g
        opt.step()
        for i, g in enumerate(grads):  # the reference: Kingma & Ba (2015), algorithm 1
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat, v_hat = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
            theta[i] = theta[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        for i, p in enumerate(params):
            err = _rel(_host(p.data) - start[i], theta[i] - start[i])
            if not err <= 1e-9:  # NaN too
                raise AssertionError(
                    f"Adam: after step {t} the parameters differ from Adam's update, "
                    f"relative error {err:.2e} in the change of p{i}"
                )
            if p.data is not arrays[i] and not np.allclose(_host(arrays[i]), theta[i]):
                raise AssertionError(
                    "Adam must update the parameters in place (theta -= ...), not rebind them"
                )
    return "3 steps match"


#: name → (points, what it checks, function). The grader runs each in the student's process.
LIBRARY_CHECKS = {
    "linear_backward": (3, "minivae/nn.py Linear.backward", _check_linear_backward),
    "adam_step": (2, "minivae/optim.py Adam (its update rule)", _check_adam_step),
    "sampler_backward": (2, "minivae/sampling.py GaussianSampler.backward", _check_sampler),
    "kl_standard_normal": (3, "minivae/losses.py kl_standard_normal", _check_kl),
}

_RUNNER = """\
import importlib.util, json, sys
folder, name, grader = sys.argv[1:4]
sys.path.insert(0, folder)
spec = importlib.util.spec_from_file_location("_minivae_grader", grader)
module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module._run_library_check(name, folder)
"""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().split("\n")[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _run_library_check(name: str, folder: str) -> None:
    """Inside the student's process: import their minivae, run one check, print a JSON line."""
    try:
        import minivae

        where = Path(minivae.__file__).resolve()
        if Path(folder).resolve() not in where.parents:
            raise ImportError(f"imported minivae from {where}, not from the student's folder")
        result = {"ok": True, "detail": LIBRARY_CHECKS[name][2](minivae)}
    except BaseException as exc:  # the student's code may raise anything
        result = {"ok": False, "detail": _first_line(exc)}
    print("\n" + json.dumps(result))


# -- grading ------------------------------------------------------------------------------------
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
        label = f"library {name}"
        if not (folder / "minivae" / "__init__.py").is_file():
            scores.append(Score(label, 0, points, f"no minivae/ package in {folder}"))
            continue
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _RUNNER, str(folder.resolve()), name, __file__],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            )
            lines = [ln for ln in proc.stdout.strip().split("\n") if ln.startswith("{")]
            if lines:
                result = json.loads(lines[-1])
            else:
                err = (proc.stderr.strip().split("\n") or [""])[-1]
                result = {"ok": False, "detail": err or f"exited with code {proc.returncode}"}
        except subprocess.TimeoutExpired:
            result = {"ok": False, "detail": f"did not finish within {timeout:g} s"}
        earned = points if result["ok"] else 0
        detail = result["detail"] if result["ok"] else f"{what}: {result['detail']}"
        scores.append(Score(label, earned, points, detail))
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
    found = set()
    for cell in nb.cells:  # restore the checks, hidden tests included
        gid = _nbgrader(cell).get("grade_id")
        if gid in checks and gid not in found:
            found.add(gid)
            cell.cell_type = "code"
            cell.source = checks[gid].source
            cell.metadata = dict(checks[gid].metadata)
            cell.outputs, cell.execution_count = [], None
    package_root = str(PACKAGE_DIR.parent)
    env = dict(os.environ, MINIVAE_LESSON_MODE="smoke", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in [env.get("PYTHONPATH")] if p])
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(student.parent)}},
    )
    failure = ""
    try:
        client.execute(env=env, stderr=subprocess.DEVNULL)
    except Exception as exc:  # a dead kernel or a timeout: the unexecuted checks fail
        failure = _first_line(exc)
    scores = []
    for gid, check in checks.items():
        possible = _points(check)
        if gid not in found:
            scores.append(Score(label(gid), 0, possible, why(gid, "check cell deleted")))
            continue
        cell = next(c for c in nb.cells if _nbgrader(c).get("grade_id") == gid)
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            err = errors[0]
            text = str(err.get("evalue", "")).strip().split("\n")[0]
            detail = f"{err.get('ename', 'Error')}: {text}" if text else err.get("ename", "Error")
            scores.append(Score(label(gid), 0, possible, why(gid, detail)))
        elif cell.get("execution_count") is None:
            scores.append(Score(label(gid), 0, possible, why(gid, failure or "not executed")))
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
    timeout: float = 600.0,
    out=print,
) -> list[Score]:
    """Grade a student edition; prints one line per exercise and a total, returns the scores.

    The library checks are skipped for an edition written with ``keep_library`` (it says so in
    its ``assignment.json``) unless ``only`` asks for them. ``only`` limits grading to some
    names: ``library`` (all library checks), a library check
    (``linear_backward``, ``adam_step``, ``sampler_backward``, ``kl_standard_normal``), or a
    lesson (``05_reparameterization``, or just ``05``).
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
    try:  # an edition written with --keep-library has no library exercises to grade
        edition = json.loads((folder / EDITION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        edition = {}
    if wanted or edition.get("library_exercises", True):
        library = [n for n in LIBRARY_CHECKS if selected("library", n)]
    else:
        library = []
    scores = _grade_library(folder, library, timeout=min(timeout, 300.0))
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
