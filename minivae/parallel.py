"""Long element-wise work split over the CPU's cores.

NumPy runs each element-wise operation (``a + b``, ``sqrt(v)``, ...) on one core; only matrix
products use several, through the BLAS library. Adam's update is a dozen such operations over
every parameter (about 650,000 numbers for the 784-400-20 VAE), so on the CPU it would keep one
core busy and leave the others idle. But each number's update involves that number only, so the
vectors can be cut into contiguous pieces that threads update at the same time. NumPy lets go of
Python's global lock while it loops over an array, so the threads really do run at once, and each
number goes through exactly the same operations whatever the cut: the result is bit for bit the
one of a single piece.

``MINIVAE_THREADS`` (an environment variable) sets how many threads. By default it is the cores
this process may use, at most 4, when minivae was imported before NumPy (see
``minivae/__init__.py``: OpenBLAS's idle threads then sleep soon after each matrix product
rather than spin on the other cores for 0.1 s), and 1 otherwise: import minivae first. On CuPy
there is one piece: the GPU already runs each operation in parallel.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["pieces", "run", "threads"]

#: Handing a piece to a thread costs some tens of microseconds; below about 100,000 numbers a
#: piece is done in less, so small vectors stay whole.
MIN_PIECE = 100_000

#: Whether to split without being asked (MINIVAE_THREADS); set by ``minivae/__init__.py``.
SPLIT_BY_DEFAULT = True

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_owner = None  # the process that made the pool (a forked child must make its own)


def threads() -> int:
    """How many threads share element-wise work: ``MINIVAE_THREADS`` if set, else the number of
    cores this process may run on, at most 4 (1 if minivae was imported after NumPy)."""
    setting = os.environ.get("MINIVAE_THREADS", "").strip()
    if setting:
        try:
            return max(1, int(setting))
        except ValueError:
            raise ValueError(
                f"MINIVAE_THREADS must be a whole number of threads, got {setting!r}."
            ) from None
    if not SPLIT_BY_DEFAULT:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask
        cores = os.cpu_count() or 1
    return min(4, cores)


def pieces(n: int, xp=None) -> list[slice]:
    """Cut ``range(n)`` into contiguous slices, one per thread (one slice only for arrays of
    another library than NumPy, for vectors too short to be worth it, or with one thread)."""
    # CuPy (whose GPU runs each operation in parallel already) or another Array API library:
    # one piece
    not_numpy = xp is not None and not xp.__name__.endswith("numpy")
    k = 1 if not_numpy else max(1, min(threads(), n // MIN_PIECE))
    bounds = [n * i // k for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def run(work, slices) -> None:
    """Call ``work(s)`` for every slice ``s``: the first here, the others in worker threads, and
    return when all are done (an error in any of them is raised here, after all have finished)."""
    if len(slices) == 1:
        work(slices[0])
        return
    futures = [_executor(len(slices) - 1).submit(work, s) for s in slices[1:]]
    try:
        work(slices[0])
    finally:
        errors = [f.exception() for f in futures]  # waits for each
    for error in errors:
        if error is not None:
            raise error


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size, _pool_owner
    if _pool is None or _pool_owner != os.getpid() or _pool_size < workers:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minivae")
        _pool_size, _pool_owner = workers, os.getpid()
    return _pool
