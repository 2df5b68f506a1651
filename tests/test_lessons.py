"""Every lesson in lessons/ runs top to bottom in smoke mode and follows the lesson conventions.

The notebooks are found when the tests are collected, so a new lesson is tested as soon as it is
saved. Smoke mode (MINIVAE_LESSON_MODE=smoke) makes each lesson pick its small sizes; proxies
pointing at a closed port make any attempt to use the network fail at once.
"""

import os
import re
from pathlib import Path

import pytest

from minivae.course.edition import BEGIN_SOLUTION, AssignmentError, stub_source

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("*.ipynb"))
IDS = [p.stem for p in LESSONS]
NO_NETWORK = "http://127.0.0.1:9"  # the discard port: nothing listens there


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader") or {}


def _is_solution(cell) -> bool:
    return bool(_nbgrader(cell).get("solution"))


def _is_check(cell) -> bool:
    return bool(_nbgrader(cell).get("grade")) and not _is_solution(cell)


# What JupyterLab 4 writes into a notebook when a kernel connects (from the kernel's spec and its
# kernel_info reply): saved with the same values, a lesson opened and saved stays byte for byte
# the same, so opening one leaves `git status` clean. JupyterLab compares the whole language_info,
# version included: a kernel on another Python version changes that one line.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
FIGURE = re.compile(r"plt\.subplots|mv\.plots\.(?!show\b|lesson_style\b)\w+\(")


def test_the_readme_starts_jupyterlab_where_the_library_is_in_reach():
    """Started in lessons/, JupyterLab could not open ../minivae/*.py nor the README."""
    readme = (LESSONS_DIR.parent / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"jupyter lab[^\n`]*", readme)
    assert commands, "the README says how to open the lessons"
    for command in commands:
        words = command.split("#")[0].split()
        assert words == ["jupyter", "lab"], f"start JupyterLab at the repository's root: {command}"


def test_the_lessons_are_there():
    names = {p.stem for p in LESSONS}
    for name in ("01_layers_by_hand", "05_reparameterization", "06_kl_divergence"):
        assert name in names, f"lessons/{name}.ipynb is missing"


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_structure(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "name lessons NN_slug.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    cells = nb.cells

    first = cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), (
        "the first cell is the title in Markdown"
    )
    assert re.search(r"\bgoals\b", first.source, re.IGNORECASE), "the first cell lists the goals"
    setup = [c for c in cells[:4] if c.cell_type == "code"]
    assert setup and "checks.smoke_mode()" in setup[0].source, "the first code cell is the setup"

    for i, cell in enumerate(cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} has outputs: strip them before saving"
            assert cell.execution_count is None, f"cell {i} has an execution count"

    ids = []
    for i, cell in enumerate(cells):
        meta = _nbgrader(cell)
        if not meta:
            continue
        where = f"cell {i} ({meta.get('grade_id', 'no grade_id')})"
        assert cell.cell_type == "code", f"{where}: nbgrader cells here are code cells"
        assert meta.get("schema_version") == 3, f"{where}: schema_version must be 3"
        for key in ("solution", "grade", "locked"):
            assert isinstance(meta.get(key), bool), f"{where}: '{key}' must be true or false"
        assert isinstance(meta.get("grade_id"), str) and meta["grade_id"], f"{where}: grade_id"
        ids.append(meta["grade_id"])
        try:
            stub_source(cell.source, where)  # raises on unbalanced or nested markers
        except AssignmentError as err:
            pytest.fail(str(err))
        if _is_solution(cell):
            assert not meta["locked"], f"{where}: a solution cell cannot be locked"
            assert BEGIN_SOLUTION in cell.source, f"{where}: mark the answer with {BEGIN_SOLUTION}"
        if meta["grade"]:
            points = meta.get("points")
            assert isinstance(points, (int, float)) and points > 0, f"{where}: points > 0"
        if _is_check(cell):
            assert meta["locked"], f"{where}: a check cell is locked"
            assert BEGIN_SOLUTION not in cell.source, f"{where}: no solution in a check cell"
    assert len(ids) == len(set(ids)), f"grade_ids must be unique, got {ids}"

    solutions = [i for i, c in enumerate(cells) if _is_solution(c)]
    assert len(solutions) >= 2, "a lesson ends with at least 2 exercises"
    for i in solutions:
        assert i + 1 < len(cells) and _is_check(cells[i + 1]), (
            f"solution cell {i} must be followed by its check cell"
        )

    headings = [
        int(m.group(1))
        for c in cells
        if c.cell_type == "markdown"
        for m in re.finditer(r"^###\s+Exercise\s+(\d+)", c.source, re.MULTILINE)
    ]
    assert len(headings) >= 2, "exercises have headings '### Exercise N — title'"
    assert headings == list(range(1, len(headings) + 1)), f"exercises numbered 1, 2, …: {headings}"
    exercises_at = [
        i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Exercises" in c.source
    ]
    assert exercises_at and exercises_at[0] < solutions[0], "an '## Exercises' section comes first"


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_is_saved_as_jupyterlab_saves_it(path):
    from ipykernel.ipkernel import IPythonKernel

    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    assert nb.metadata.kernelspec == KERNELSPEC
    expected = {k: v for k, v in IPythonKernel.language_info.items() if k != "version"}
    info = dict(nb.metadata.language_info)
    assert re.fullmatch(r"3\.\d+\.\d+", info.pop("version", "")), "language_info has a version"
    assert info == expected, "language_info as ipykernel reports it"
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert text == nbformat.writes(nb) + "\n", "saved as nbformat writes (indent 1, sorted keys)"


@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_figures_have_captions_and_links_open(path):
    """Each cell that draws a figure shows it with mv.plots.show(fig, caption) (the smoke run
    checks that a caption follows every image); each library file the text names is a link that
    opens it (relative to lessons/, as in the student edition)."""
    nb = nbformat.read(path, as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert "mv.plots.lesson_style()" in setup.source, "the setup cell sets the lessons' style"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and FIGURE.search(cell.source):
            assert "mv.plots.show(" in cell.source, f"cell {i} draws a figure without a caption"
            assert "plt.show()" not in cell.source, f"cell {i}: show figures with mv.plots.show"
        if cell.cell_type == "markdown":
            for name in re.findall(r"(?<!\[)`(minivae/\w+\.py)`(?!\])", cell.source):
                pytest.fail(f"cell {i}: write `{name}` as a link, [`{name}`](../{name})")
            for target in re.findall(r"\]\((\.\./[^)]+)\)", cell.source):
                assert (path.parent / target).exists(), f"cell {i}: {target} does not exist"
    if any("mv.fit(" in c.source for c in nb.cells):
        fits = "".join(c.source for c in nb.cells if "mv.fit(" in c.source)
        assert "progress=False" not in fits and "progress=PROGRESS" in fits
        assert "PROGRESS = checks.show_progress()" in setup.source


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=IDS)
def test_lesson_runs_in_smoke_mode(path, tmp_path):
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, MINIVAE_LESSON_MODE="smoke", MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1")
    env["MINIVAE_DATA"] = str(tmp_path / "no-downloads")  # nothing cached from earlier runs
    trace = tmp_path / "library-calls.txt"
    env["MINIVAE_TRACE_LIBRARY"] = str(trace)  # checks.library_written records the calls
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[key] = NO_NETWORK
    for key in ("NO_PROXY", "no_proxy"):
        env.pop(key, None)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        pytest.fail(f"{path.name} failed in smoke mode:\n{err}", pytrace=False)
    for i, cell in enumerate(nb.cells):
        outputs = cell.get("outputs", [])
        for k, out in enumerate(outputs):
            data = out.get("data", {})
            assert "application/vnd.jupyter.widget-view+json" not in data, (
                f"{path.name} cell {i}: a progress bar in smoke mode"
            )
            assert out.get("name") != "stderr", f"{path.name} cell {i} wrote to stderr: {out}"
            if "image/png" in data:
                after = outputs[k + 1].get("data", {}) if k + 1 < len(outputs) else {}
                assert after.get("text/markdown", "").startswith("*Figure: "), (
                    f"{path.name} cell {i}: a figure without a caption under it"
                )
    printed = [
        line
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
        for line in out.get("text", "").split("\n")
    ]
    for line in printed:  # JupyterLab breaks longer lines anywhere, mid-word too
        assert len(line) <= 100, f"{path.name} prints a line of {len(line)} characters: {line}"
    sentences = [line for line in printed if len(line) > 60 and " " in line]
    repeated = {line for line in sentences if sentences.count(line) > 1}
    assert not repeated, f"{path.name} prints the same sentence twice: {repeated}"
    assert "array_api_strict" not in "\n".join(printed), "a backend only for checking code"
    # the first cell names exactly the library exercises the lesson calls, so that a student
    # edition says at the top which ones to write first
    lines = trace.read_text(encoding="utf-8").split("\n") if trace.exists() else []
    declared = [ln.split()[1:] for ln in lines if ln.startswith("declared")]
    called = {ln.split()[1] for ln in lines if ln.startswith("called ")}
    assert len(declared) == 1, f"{path.name}: its first cell calls checks.library_written once"
    assert called == set(declared[0]), (
        f"{path.name}: library_written names {sorted(declared[0])}, the lesson calls "
        f"{sorted(called)}"
    )
    for cell in nb.cells:  # every check cell (hidden tests included) reported a passed check
        if _is_check(cell):
            streams = [o for o in cell.outputs if o.get("output_type") == "stream"]
            text = "".join(o.get("text", "") for o in streams)
            assert "✓" in text, (
                f"{path.name}: check cell {_nbgrader(cell)['grade_id']} printed no ✓ "
                "(check cells call minivae.checks, which print one per passed check)"
            )


# -- the helpers the check cells call ------------------------------------------------------------
@pytest.mark.slow
def test_a_failed_check_shows_in_a_notebook_as_one_line_without_a_traceback(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from minivae import checks\ncheck = checks.check_true\n"
            'check("the loss", False, "the loss went up.")'
        )
    ]
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert error.ename == "ExerciseFailed" and error.evalue == "the loss: the loss went up."
    assert len(error.traceback) == 1, error.traceback  # no frames of checks.py
    assert "✗ the loss: the loss went up." in error.traceback[0]


def test_progress_bars_are_off_in_smoke_mode_unless_asked_for(monkeypatch):
    from minivae import checks

    monkeypatch.delenv("MINIVAE_LESSON_PROGRESS", raising=False)
    monkeypatch.delenv("MINIVAE_LESSON_MODE", raising=False)
    assert checks.show_progress()
    monkeypatch.setenv("MINIVAE_LESSON_MODE", "smoke")
    assert not checks.show_progress()
    monkeypatch.setenv("MINIVAE_LESSON_PROGRESS", "on")
    assert checks.show_progress()
    monkeypatch.setenv("MINIVAE_LESSON_PROGRESS", "off")
    monkeypatch.delenv("MINIVAE_LESSON_MODE")
    assert not checks.show_progress()


def test_a_lesson_says_first_which_library_function_is_not_written(monkeypatch, capsys):
    import minivae as mv
    from minivae import checks

    assert checks.library_written() and capsys.readouterr().out == ""

    def stub(self, dout):
        raise NotImplementedError("Linear.backward is yours to write: lesson 1, exercise 3.")

    monkeypatch.setattr(mv.nn.Linear, "backward", stub)
    assert not checks.library_written("Linear.backward", "Adam.update")
    lines = capsys.readouterr().out.strip().split("\n")
    assert lines == [
        "Linear.backward in minivae/nn.py is not written yet (lesson 1, exercise 3): the cells "
        "of this lesson that use it will stop until it is."
    ]

    def broken(logits, x):  # a student's version that fails in another way
        raise TypeError("unsupported operand")

    monkeypatch.setattr(mv.losses, "bernoulli_nll", broken)
    assert not checks.library_written("bernoulli_nll")
    assert capsys.readouterr().out.strip() == (
        "bernoulli_nll in minivae/losses.py raises TypeError (unsupported operand): see lesson 2, "
        "exercise 5; the cells of this lesson that use it will stop there too."
    )
    with pytest.raises(ValueError, match="no library exercise is called 'Linear.forward'"):
        checks.library_written("Linear.forward")


def test_pick_follows_the_lesson_mode(monkeypatch):
    from minivae import checks

    monkeypatch.setenv("MINIVAE_LESSON_MODE", "smoke")
    assert checks.smoke_mode() and checks.pick(full=10, smoke=1) == 1
    monkeypatch.delenv("MINIVAE_LESSON_MODE")
    assert not checks.smoke_mode() and checks.pick(full=10, smoke=1) == 10


def test_checks_pass_quietly_and_fail_with_what_is_wrong(capsys):
    import numpy as np

    import minivae as mv
    from minivae import checks

    x = np.random.default_rng(0).normal(size=(3, 4))
    checks.check_gradient("square", lambda v: np.sum(v**2), x, 2 * x)
    checks.check_close("close", [1.0, 2.0], np.array([1.0, 2.0 + 1e-9]))
    checks.check_shape("shape", x, (3, 4))
    checks.check_true("true", True, "unused")
    checks.check_module("tanh", mv.nn.Tanh(), x)
    out = capsys.readouterr().out
    assert out.count("✓") == 5 and "relative error" in out

    failures = [
        (lambda: checks.check_gradient("g", lambda v: np.sum(v**2), x, 3 * x), "relative error 2"),
        (lambda: checks.check_gradient("g", lambda v: np.sum(v**2), x, x[:2]), "shape"),
        (lambda: checks.check_close("c", np.ones(3), np.array([1.0, 1.0, 2.0])), "index (2,)"),
        (lambda: checks.check_close("c", 1.5, 2.0), "your answer 1.5 is off by -0.5"),
        (lambda: checks.check_close("c", None, 1.0), "return"),
        (lambda: checks.check_shape("s", x, (4, 3)), "expected shape (4, 3)"),
        (lambda: checks.check_true("t", False, "the loss went up"), "the loss went up"),
    ]
    for call, words in failures:
        with pytest.raises(checks.ExerciseFailed, match=re.escape(words)):
            call()

    class WrongTanh(mv.nn.Tanh):
        def backward(self, dout):
            return 2 * super().backward(dout)

    with pytest.raises(AssertionError, match="relative error 3.33e-01"):
        checks.check_module("wrong tanh", WrongTanh(), x)


def _linear_backwards():
    """Linear.backward as students really write it wrong: right numbers, wrong arrays."""

    def rebinds_sum(self, dout, input_grad=True):
        self.W.grad = self.W.grad + self.cache.T @ dout
        self.b.grad = self.b.grad + dout.sum(axis=0)
        return dout @ self.W.data.T

    def rebinds_product(self, dout, input_grad=True):
        self.W.grad = self.cache.T @ dout
        self.b.grad = dout.sum(axis=0)
        return dout @ self.W.data.T

    def overwrites(self, dout, input_grad=True):
        self.W.grad[...] = self.cache.T @ dout
        self.b.grad[...] = dout.sum(axis=0)
        return dout @ self.W.data.T

    return [
        (rebinds_sum, "backward gave W a new gradient array (`self.W.grad = ...`)"),
        (rebinds_product, "backward gave W a new gradient array"),
        (overwrites, "backward overwrites it"),
    ]


@pytest.mark.parametrize("wrong, words", _linear_backwards(), ids=["=+", "=", "[...]="])
def test_lesson_1_exercise_3_check_refuses_a_linear_backward_that_does_not_add_in_place(
    monkeypatch, wrong, words
):
    import numpy as np

    import minivae as mv
    from minivae import checks

    nb = nbformat.read(LESSONS_DIR / "01_layers_by_hand.ipynb", as_version=4)
    cell = next(
        c for c in nb.cells if 'check_module(\n    "minivae\'s Linear.backward"' in c.source
    )
    monkeypatch.setattr(mv.nn.Linear, "backward", wrong)
    with pytest.raises(checks.ExerciseFailed, match=re.escape(words)):
        exec(cell.source, {"mv": mv, "np": np, "checks": checks})


# -- check cells against the wrong answers students write ---------------------------------------
def _check_cell(lesson: str, gid: str) -> str:
    nb = nbformat.read(LESSONS_DIR / lesson, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)
    return cell.source


def _run_check(lesson, gid, **names):
    import numpy as np

    import minivae as mv
    from minivae import checks

    exec(_check_cell(lesson, gid), {"mv": mv, "np": np, "checks": checks, **names})


def _angles_without_qr(A, B):
    import numpy as np

    cosines = np.linalg.svd(np.asarray(A).T @ np.asarray(B), compute_uv=False)
    return np.sort(np.arccos(np.clip(cosines, 0.0, 1.0)))


def _angles_with_qr(A, B):
    import numpy as np

    qa, qb = np.linalg.qr(A)[0], np.linalg.qr(B)[0]
    return np.sort(np.arccos(np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), 0.0, 1.0)))


def test_lesson_3_exercise_3_refuses_principal_angles_without_orthonormalizing():
    from minivae import checks

    with pytest.raises(checks.ExerciseFailed, match="skewed, scaled bases"):
        _run_check("03_bottleneck.ipynb", "ex3_check", principal_angles=_angles_without_qr)
    # the right answer gets past the checks to the cell's own use of W_d (defined earlier)
    with pytest.raises(NameError, match="W_d"):
        _run_check("03_bottleneck.ipynb", "ex3_check", principal_angles=_angles_with_qr)


def test_lesson_5_exercise_2_refuses_the_exact_formula_for_a_monte_carlo_estimate():
    import numpy as np

    from minivae import checks

    def exact(mu, logvar, eps):
        return 2 * mu, float(np.exp(logvar))

    def monte_carlo(mu, logvar, eps):
        sigma = np.exp(0.5 * logvar)
        z = mu + sigma * eps
        return np.mean(2 * z), np.mean(2 * z * eps * 0.5 * sigma)

    with pytest.raises(checks.ExerciseFailed, match="with every ε = 0"):
        _run_check("05_reparameterization.ipynb", "ex2_check", mc_gradients=exact)
    _run_check("05_reparameterization.ipynb", "ex2_check", mc_gradients=monte_carlo)


def test_lesson_9_exercise_2_refuses_the_raw_npz_file(tmp_path):
    import tempfile

    import numpy as np

    from minivae import checks

    rng = np.random.default_rng(0)
    mu, logvar, labels = rng.normal(size=(5, 2)), rng.normal(size=(5, 2)), np.arange(5)

    def save(path, mu, logvar, labels):
        np.savez_compressed(path, mu=mu, logvar=logvar, labels=labels)

    def raw(path):
        return np.load(path, allow_pickle=False)

    def copied(path):
        with np.load(path, allow_pickle=False) as saved:
            return {k: saved[k] for k in saved.files}

    names = {
        "encode_dataset": lambda model, x: (mu, logvar),
        "model": None,
        "x_test": None,
        "y_test": labels,
        "tempfile": tempfile,
        "Path": Path,
        "save_latents": save,
    }
    with pytest.raises(checks.ExerciseFailed, match="NpzFile"):
        _run_check("09_gpu_and_beyond.ipynb", "ex2_check", load_latents=raw, **names)
    _run_check("09_gpu_and_beyond.ipynb", "ex2_check", load_latents=copied, **names)


def test_check_close_fails_on_nan_and_never_prints_two_equal_looking_numbers():
    import numpy as np

    from minivae import checks

    with pytest.raises(checks.ExerciseFailed, match="NaN"):
        checks.check_close("nan", np.array([1.0, np.nan]), np.ones(2))
    with pytest.raises(checks.ExerciseFailed):  # NaN in the expected value does not pass
        checks.check_close("nan expected", 1.0, np.nan)
    with pytest.raises(checks.ExerciseFailed, match="NaN"):  # bool(nan) is True: not here
        checks.check_true("nan condition", np.float64("nan"), "no number")
    with pytest.raises(checks.ExerciseFailed) as info:
        checks.check_close("close call", -0.1534262, -0.15342649, rtol=1e-9, atol=0)
    message = str(info.value)
    assert "-0.1534262 " in message and "off by +2.9e-07" in message  # 7 digits, and by how much
    assert "-0.15342649" not in message  # not the value to copy


@pytest.mark.parametrize(
    "got, words",
    [
        (lambda e: 2 * e, "factor ½ missing"),
        (lambda e: e / 2, "factor ½ too many"),
        (lambda e: -e, "wrong sign"),
        (lambda e: e.T, "transpose"),
        (lambda e: 0 * e, "all zeros"),
    ],
    ids=["no ½", "extra ½", "sign", "transpose", "zeros"],
)
def test_check_close_names_the_likely_mistake(got, words):
    import numpy as np

    from minivae import checks

    expected = np.random.default_rng(0).normal(size=(3, 2))
    with pytest.raises(checks.ExerciseFailed, match=words):
        checks.check_close("c", got(expected), expected)


def test_check_gradient_names_a_missing_half():
    import numpy as np

    from minivae import checks

    x = np.random.default_rng(1).normal(size=(4,))
    with pytest.raises(checks.ExerciseFailed, match="factor ½ missing"):
        checks.check_gradient("half", lambda v: 0.5 * np.sum(v**2), x, 2 * x)


def test_lesson_6_exercise_3_refuses_a_wrong_minimum_and_shows_no_grid_search():
    import numpy as np

    from minivae import checks

    source = _check_cell("06_kl_divergence.ipynb", "ex3_check")
    visible = stub_source(source)
    assert "argmin" not in visible and "geomspace" not in visible, "the answer in plain sight"

    def value_at(var):  # the value that goes with a (right or wrong) minimizer
        return lambda c: var(c) - c * np.log(var(c)) - 1.0

    right = {"var_star": lambda c: c, "value_star": value_at(lambda c: c)}
    wrong = [  # the slope 1 − c/σ² set to 0 with a factor or a sign lost, or the lecture's only
        ({"var_star": lambda c: 2 * c, "value_star": value_at(lambda c: 2 * c)}, "slope"),
        ({"var_star": lambda c: 1 / c, "value_star": value_at(lambda c: 1 / c)}, "slope"),
        ({"var_star": lambda c: -c, "value_star": lambda c: 0.0}, "positive"),
        ({"var_star": lambda c: 0.5, "value_star": value_at(lambda c: 0.5)}, "c = 1: the slope"),
        ({**right, "value_star": lambda c: c - 1.0}, "minimum value"),
        ({**right, "value_star": lambda c: float("nan")}, "minimum value"),
    ]
    for values, words in wrong:
        with pytest.raises(checks.ExerciseFailed, match=words):
            _run_check("06_kl_divergence.ipynb", "ex3_check", **values)
    _run_check("06_kl_divergence.ipynb", "ex3_check", **right)


def test_lesson_9_exercise_3_refuses_a_farthest_or_transposed_search_with_no_answer_shown():
    import numpy as np

    from minivae import checks

    visible = stub_source(_check_cell("09_gpu_and_beyond.ipynb", "ex3_check"))
    assert "np.linalg.norm" not in visible.split("mu_q")[0], "the brute force in plain sight"

    def right(queries, bank):
        return np.argmin(((queries[:, None, :] - bank[None]) ** 2).sum(-1), axis=1)

    def farthest(queries, bank):
        return np.argmax(((queries[:, None, :] - bank[None]) ** 2).sum(-1), axis=1)

    def dot_product(queries, bank):  # "most similar" as the largest dot product
        return np.argmax(queries @ bank.T, axis=1)

    names = {"encode_dataset": lambda model, x: (np.zeros((3, 2)), None), "model": None}
    names.update(x_test=None, y_test=np.arange(3), latents={"labels": np.arange(4)})
    for wrong in (farthest, dot_product):
        with pytest.raises(checks.ExerciseFailed, match="nearest corner"):
            _run_check("09_gpu_and_beyond.ipynb", "ex3_check", nearest=wrong, **names)
    names["latents"]["mu"] = np.zeros((4, 2))
    _run_check("09_gpu_and_beyond.ipynb", "ex3_check", nearest=right, **names)


def _adam_updates():
    """Adam.update as students write it wrong: the step count off by one, no bias correction."""

    def rule(shift, corrected=True):
        def update(self, theta, g, m, v):
            import numpy as np

            t = self.t + shift
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            c1, c2 = (1 - self.beta1**t, 1 - self.beta2**t) if corrected else (1.0, 1.0)
            with np.errstate(all="ignore"):
                theta -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

        return update

    return [
        (rule(-1), "taken at t = 0"),
        (rule(+1), "is t off by one"),
        (rule(0, corrected=False), "Is the correction missing"),
    ]


@pytest.mark.parametrize("wrong, words", _adam_updates(), ids=["t-1", "t+1", "uncorrected"])
def test_lesson_1_exercise_3_check_names_adams_usual_mistakes(monkeypatch, wrong, words):
    import numpy as np

    import minivae as mv
    from minivae import checks

    nb = nbformat.read(LESSONS_DIR / "01_layers_by_hand.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "minivae's Adam, first step" in c.source)
    monkeypatch.setattr(mv.Adam, "update", wrong)
    with pytest.raises(checks.ExerciseFailed, match=re.escape(words)):
        exec(cell.source, {"mv": mv, "np": np, "checks": checks})
