"""Shared fixtures: every array backend that can run here, child processes read with a timeout,
and the ``slow`` marker on the tests that start processes or notebooks.

``backend`` is parametrized over NumPy, array_api_strict (the Array API standard and nothing
more, so a NumPy-only call in the core fails there) and CuPy, which is skipped cleanly when CuPy
or a GPU is missing. Each test gets float64 arrays from ``to_backend``.

``spawn`` starts a child process whose output is read line by line, every wait bounded by a
timeout, and kills it at the end of the test whatever happened.

Plain values and helpers that several files share (the toy data set, the small VAE, parameter
comparisons, a memory probe) are in ``shared.py``.

``pytest -m "not slow"`` runs the core: it leaves out the tests that start Python processes,
execute the lesson notebooks or build and grade the student edition (marked here or where they
are written).
"""

import os
import queue
import subprocess
import threading

# One BLAS thread for the tests (set before NumPy loads its BLAS): the models here are small, and
# on a machine whose cores are busy with other work, BLAS threads waiting for each other can make
# a test many times slower. Speed is measured in benchmarks/, never in tests.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property-based tests draw the same examples on every run (seeded), like every other test.
settings.register_profile("minivae", derandomize=True, database=None)
settings.load_profile("minivae")

import minivae as mv  # noqa: E402

BACKENDS = ["numpy", "array_api_strict", "cupy"]


def _can_run(name):
    try:
        mv.set_backend(name)
    except mv.BackendError as err:
        return str(err)
    finally:
        mv.set_backend("numpy")
    return None


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The name of the active backend for this test; NumPy is restored afterwards."""
    if _can_run(request.param):
        pytest.skip(f"the {request.param} backend cannot run here (not installed or no GPU)")
    mv.set_backend(request.param)
    yield request.param
    mv.set_backend("numpy")
    mv.set_dtype("float32")


@pytest.fixture
def to_backend(backend):
    """Turn a NumPy array into a float64 array on the active backend."""

    def convert(a, dtype="float64"):
        return mv.asarray(np.asarray(a), dtype=dtype)

    return convert


@pytest.fixture(autouse=True)
def _restore_numpy():
    yield
    mv.set_backend("numpy")
    mv.set_dtype("float32")


# Whole files whose every test executes notebooks or builds the course (the files themselves are
# the course's; the marker is added here).
SLOW_FILES = ("test_lessons.py", "test_assignments.py", "test_browser.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


class Child:
    """A child process whose stdout is read line by line on a thread, so that every wait for a
    line (or for the end) fails the test after ``timeout`` seconds instead of hanging it."""

    def __init__(self, args, timeout=60, **kwargs):
        kwargs.setdefault("stderr", subprocess.PIPE)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, **kwargs)
        self.timeout = timeout
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in iter(self.proc.stdout.readline, ""):
            self._lines.put(line)
        self._lines.put(None)

    def readline(self) -> str:
        """The next line of stdout ('' at its end), waiting at most ``timeout`` seconds."""
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            self.kill()
            pytest.fail(f"{self.proc.args[:3]}… wrote no line for {self.timeout} s")
        return "" if line is None else line

    def lines(self):
        """Every line of stdout to its end, each wait bounded."""
        while line := self.readline():
            yield line

    def finish(self):
        """Wait for the child to exit (bounded); returns the rest of stdout and all of stderr."""
        self.proc.wait(timeout=self.timeout)
        rest = "".join(self.lines())
        err = self.proc.stderr.read() if self.proc.stderr else ""
        return rest, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=self.timeout)


@pytest.fixture
def spawn():
    """Start :class:`Child` processes; each is killed (if still running) when the test ends."""
    children = []

    def start(args, **kwargs):
        children.append(Child(args, **kwargs))
        return children[-1]

    yield start
    for child in children:
        child.kill()
        for stream in (child.proc.stdout, child.proc.stderr):
            if stream:
                stream.close()


def assert_on_backend(array):
    """The array lives in the active namespace (no silent fall back to NumPy)."""
    assert mv.backend.namespace(array) is mv.xp, f"{type(array)} is not an array of {mv.xp}"
