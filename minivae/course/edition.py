"""The student edition of the lessons and library: ``python -m minivae assign OUT``.

Solutions are marked where they are written, with the markers nbgrader uses: the answer sits
between a line ``### BEGIN SOLUTION`` and a line ``### END SOLUTION``, indented like the code
around it (see ``Linear.backward`` in ``minivae/nn.py``). Only lines that hold nothing but a marker
count. In a notebook, a solution cell carries ``{"nbgrader": {"solution": true, "grade_id": ...}}``
and a check cell ``{"nbgrader": {"grade": true, "points": P, "grade_id": ...}}``; extra tests the
student should not see sit between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``.

:func:`assign` writes ``OUT/lessons/`` and ``OUT/minivae/`` with every marked region replaced by a
stub that raises ``NotImplementedError`` naming the function and the exercise that asks for it,
hidden tests removed and outputs cleared; the docstrings of the stubbed library functions say the
task instead of the answer; ``minivae/course/`` (the grader and its reference answers) is left
out. ``OUT/requirements.txt`` and ``OUT/README.md`` let the folder stand on its own: a student
installs the dependencies, not minivae, so that the kernel imports the edition's own copy.
:mod:`minivae.course.grading` grades such a folder, :mod:`minivae.course.nbgrader` lays it out
as an nbgrader course.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

from ..checks import LIBRARY_EXERCISES

__all__ = ["AssignmentError", "assign", "stub_source", "student_requirements"]

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
YOUR_CODE = "# YOUR CODE HERE"  # the first line of a stub; a raise naming the exercise follows

EDITION_FILE = "assignment.json"  # a summary of what assign wrote; grading never reads it
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # minivae/
#: Left out of a student edition: the grader, its reference answers and the edition builder
#: (course/), and the compiled Adam of the fast path (its update is the answer to lesson 1's
#: exercise 3; without it, fast.Adam runs the student's Adam.update on its flat buffers).
NOT_SHIPPED = ("course", "_numba_kernels.py", "_cupy_kernels.py")

#: The docstring a stubbed library function gets in the student edition: the task, not the
#: derivation (the instructor's copy keeps the derivation line by line beside the code).
TASKS = {
    "Linear.backward": """Backward pass of y = x·W + b, given dout = dL/dy (batch, out_features).

        Add dL/dW and dL/db into ``self.W.grad`` and ``self.b.grad`` in place (``+=``: a layer
        used twice adds both gradients up) and return dL/dx (batch, in_features), or None when
        ``input_grad`` is False. Each gradient has the shape of what it is the gradient of.
        Lesson 1, exercise 3 asks for it; its check compares with finite differences.
        """,
    "Adam.update": """Adam's rule (the class docstring), in place, on one parameter θ, its
        gradient g and its running means m and v, for step number ``self.t`` (1 at the first).
        Lesson 1, exercise 3 asks for it.
        """,
    "GaussianSampler.backward": """Given dz = dL/dz, return ``(dmu, dlogvar)``: dL/dμ and dL/dlog σ²
        for z = μ + σ·ε, with the ε and σ that forward cached (never draw new noise here).
        Lesson 5 derives them (exercise 1) and asks for this method (exercise 3).
        """,
    "kl_standard_normal": """KL( N(μ, diag σ²) ‖ N(0, I) ) in closed form, from μ and log σ².

    Summed over latent dimensions, averaged over the batch; returns ``(value, dmu, dlogvar)``,
    the value and its gradients with respect to ``mu`` and ``logvar``. Lesson 6 derives the
    closed form and asks for this function (exercise 4).
    """,
    "bernoulli_log_prob": """log p(x | z) under a Bernoulli decoder with ``logits`` (B, D):
    one value per example, shape (B,), summed over pixels. It must stay finite for logits like
    ±1e4. Lesson 2 explains it (exercise 1) and asks for this function (exercise 5).
    """,
    "gaussian_log_prob": """log N(x | x̂, σ²I) with λ = 1/(2σ²), one value per example (shape (B,)),
    constant included (see gaussian_nll). Lesson 2 asks for it (exercises 4 and 5).""",
    "bernoulli_nll": """The Bernoulli negative log-likelihood of targets ``x`` ∈ [0, 1]
    given decoder ``logits``, summed over pixels and averaged over the batch, and its gradient
    with respect to the logits. Returns ``(value, dlogits)``. Lesson 2 derives both (exercises 1
    and 2) and asks for this function (exercise 5).
    """,
    "gaussian_nll": """The Gaussian negative log-likelihood with a fixed variance, in the lecture's
    weighted form λ·‖x − x̂‖² plus the constant that makes it −log N(x | x̂, σ²I), λ = 1/(2σ²):
    summed over features, averaged over the batch. Returns ``(value, dx_mean)``, the value and
    its gradient with respect to ``x_mean``. Lesson 2 asks for it (exercises 4 and 5).
    """,
    "kl_per_element": """The KL of each example and latent dimension, unsummed, shape of ``mu``:
    the terms kl_standard_normal adds up. Lesson 6 asks for it (exercise 4).""",
    "softmax_cross_entropy": """Cross-entropy of integer class ``labels`` (B,) under
    softmax(``logits``) (B, K), averaged over the batch, and its gradient with respect to the
    logits; no exponential may overflow (logits like 1000). Returns ``(value, dlogits)``.
    Lesson 4 derives it (exercise 2) and asks for this function (exercise 5).
    """,
    "Classifier.accuracy": """The fraction of examples whose predicted class is the label (a
        Python float). Lesson 4 asks for it (exercises 1 and 5).""",
    "VAE.loss": """total = recon + β·KL for a batch, from the encoder, the sampler, the decoder's
        likelihood (``self._reconstruction``) and ``self.regularizer``; keep in ``self._cache``
        what backward needs. ``eps`` (batch, latent_dim) fixes the noise. Returns
        ``LossTerms(total=..., recon=..., kl=...)``. Lesson 7 asks for it (exercises 1 and 5).
        """,
    "VAE.backward": """Fill p.grad of every parameter from the last ``loss``: send the gradient back
        through the decoder, the sampler, the clamp, both heads and the encoder, adding the KL's
        gradients (weighted by β) where μ and log σ² reach the loss a second time. Returns dL/dx
        if ``input_grad``. Lesson 7 asks for it (exercises 3 and 5).
        """,
    "log_weights": """log w = log p(x|z) + log p(z) − log q(z|x) for z = μ + σ·ε, shape (examples,
    samples). ``xb`` (m, D), ``mu`` and ``logvar`` (m, L) and ``eps`` (m, s, L): s samples per
    example, decoded as one batch of m·s codes with ``model.log_px``. Lesson 7 asks for it
    (exercises 4 and 5).
    """,
    "kl_per_dimension": """The KL of each latent dimension, averaged over ``x``: a NumPy array
    (latent_dim,), nats; the entries sum to ``elbo(model, x)["kl"]``. Lesson 8 asks for it
    (exercises 1 and 5).
    """,
    "latent_activity": """The activity A_j = Var_x(E_q[z_j | x]) of each latent dimension, a NumPy
    array (latent_dim,), from the posterior means ``mu`` (dividing by the number of examples).
    Lesson 8 asks for it (exercises 2 and 5).
    """,
    "interpolation": """A walk from input ``x_a`` to input ``x_b`` through the latent space: the
    decoder means at ``n_steps`` evenly spaced codes from μ_a to μ_b, with the inputs at both
    ends. Lesson 8 asks for the codes (exercises 3 and 5).
    """,
    "squared_distances": """‖a_i − b_j‖² for all pairs of rows, shape (m, n), without a Python loop
    and never below 0. Lesson 9 asks for it (exercises 3 and 4).""",
    "Schedule.q_mean_var": """The mean and variance of q(z_t | z_0) for codes ``z0`` (B, d) and
        steps ``t`` (B,): ``(mean, variance)``, shapes (B, d) and (B, 1). Lesson 10 asks for it
        (exercises 1 and 4).
        """,
    "Schedule.q_sample": """A draw z_t from q(z_t | z_0), made from the noise ``eps`` (B, d).
        Lesson 10 asks for it (exercises 1 and 4).""",
    "LatentDiffusion.backward": """Fill p.grad of every weight from the last loss: the gradient of
        the loss with respect to ε̂, then ``self.net.backward`` of it. Lesson 10 asks for it
        (exercises 3 and 4).
        """,
    "LatentDiffusion.ddpm_step": """One step of ancestral sampling (Ho et al., 2020, Algorithm 2),
        from t to t − 1, with the predicted noise ``eps_hat`` and the fresh noise ``noise``;
        ``t`` is one step for the whole batch. Lesson 10 asks for it (exercises 2 and 4).
        """,
}
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
    """Every file of the package a student gets (sources and data, no caches, not course/)."""
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if rel.parts[0] in NOT_SHIPPED or "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        if path.is_file():
            yield path


def _task_docstrings(text: str, marked) -> str:
    """``text`` (a library file) with the docstring of each function of ``marked`` (the functions
    stubbed in this file) replaced by its task in :data:`TASKS`: a student edition says what to
    write, not the answer. Every stubbed function has a task."""
    tree = ast.parse(text)
    lines = text.split("\n")
    spans = []
    for name in marked:
        task = TASKS.get(name)
        if task is None:
            raise AssignmentError(f"{name} holds a solution but edition.TASKS has no task for it")
        node, found = tree, True
        for part in name.split("."):
            node = next(
                (
                    n
                    for n in ast.walk(node)
                    if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part
                ),
                None,
            )
            if node is None:
                found = False
                break
        if not found or ast.get_docstring(node) is None:
            continue
        doc = node.body[0]
        first = lines[doc.lineno - 1]
        indent = first[: len(first) - len(first.lstrip())]
        spans.append((doc.lineno, doc.end_lineno, indent + '"""' + task + '"""'))
    for start, end, new in sorted(spans, reverse=True):
        lines[start - 1 : end] = [new]
    return "\n".join(lines)


def student_requirements() -> list[str]:
    """What a student edition needs installed: minivae's own dependencies and the lessons' extra,
    never minivae itself (the kernel must import the edition's copy)."""
    from importlib import metadata

    try:
        requires = metadata.requires("minivae") or []
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        requires = []
    wanted = []
    for req in requires:
        spec, _, marker = req.partition(";")
        marker = marker.replace(" ", "")
        if not marker or marker in ('extra=="lessons"', "extra=='lessons'"):
            wanted.append(spec.strip())
    return wanted + ["ipykernel>=6.29"] if wanted else FALLBACK_REQUIREMENTS


FALLBACK_REQUIREMENTS = [
    "numpy>=1.26",
    "array-api-compat>=1.11",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "pooch>=1.8",
    "numba>=0.60",
    "threadpoolctl>=3.1",
    "jupyterlab>=4",
    "ipywidgets>=8",
    "ipykernel>=6.29",
]


README = """# minivae — student edition

This folder holds your copy of the lessons (`lessons/`) and of the minivae library (`minivae/`).
Wherever a cell or a function says

    # YOUR CODE HERE
    raise NotImplementedError(...)

replace those two lines with your answer. Each exercise in a lesson is followed by a check cell:
run it, and it prints ✓ when your answer is right or says what is wrong (for a backward pass,
the relative error of your gradient against finite differences).

## Install (once)

Install what the lessons need, **not** minivae itself: the library you work on is the copy in
this folder, and an installed minivae would answer in its place.

    cd {name}
    python3 -m venv .venv
    . .venv/bin/activate            # Windows: .venv\\Scripts\\activate
    pip install -r requirements.txt

## Work

Start JupyterLab from this folder, with this folder on Python's path, so that every notebook's
kernel imports *your* copy of minivae and the file browser shows the lessons, the library and
this README side by side:

    PYTHONPATH="$PWD" jupyter lab

Check that a notebook's kernel sees your copy (this runs from `lessons/`, where the kernels run):

    cd lessons && PYTHONPATH="$PWD/.." python -c "import minivae; print(minivae.__file__)"; cd ..

It must print a path inside this folder. Each lesson's first cell checks the same and says so
when the kernel imports another minivae. Then open `lessons/01_layers_by_hand.ipynb`. The links
in the lessons (`../minivae/nn.py`, …) open the library's files next to the notebook.

{library}"""

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
    ``out_dir/minivae/``: the package without ``course/``, every marked region of its ``.py``
    files stubbed and the stubbed functions' docstrings saying the task (``keep_library`` copies
    it unchanged). ``out_dir/README.md``: how to install and work in the folder;
    ``out_dir/requirements.txt``: what to install. ``out_dir/assignment.json``: the summary (for
    the instructor; grading never reads it). ``with_solutions`` writes the answer key instead:
    the same layout with every answer kept (grading it gives full marks).
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
                stubbed_text = stub_source(text, f"minivae/{rel}", with_solutions)
                functions = _marked_functions(text)
                if not with_solutions:
                    stubbed_text = _task_docstrings(stubbed_text, functions)
                library[rel] = stubbed_text
                stubbed += [f"minivae/{rel}: {f}" for f in functions]
                asked += [(f, _asked(f"minivae/{rel}", f)) for f in functions]
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
        order = list(LIBRARY_EXERCISES)  # lesson by lesson, as a student meets them
        asked.sort(key=lambda item: order.index(item[0]) if item[0] in order else len(order))
        todo = LIBRARY_TODO.format(items="\n".join(line for _, line in asked))
    (out / "README.md").write_text(README.format(name=out.name, library=todo), encoding="utf-8")
    requirements = "\n".join(student_requirements())
    (out / "requirements.txt").write_text(
        "# what the lessons need; minivae itself is the copy in minivae/ (do not install it)\n"
        + requirements
        + "\n",
        encoding="utf-8",
    )
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
