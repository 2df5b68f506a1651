"""Element-wise work split over threads (minivae.parallel): same result, every number covered."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import minivae as mv
from minivae import parallel


def _train_adam(threads, monkeypatch, size=350_000, steps=4):
    monkeypatch.setenv("MINIVAE_THREADS", str(threads))  # asked for: split even after NumPy
    rng = np.random.default_rng(0)
    params = [
        mv.nn.Parameter(rng.normal(size=(size // 100, 100)).astype(np.float32)),
        mv.nn.Parameter(rng.normal(size=(7,)).astype(np.float32)),
    ]
    opt = mv.Adam(params, lr=1e-2)
    pieces = len(parallel.pieces(opt.flat_data.shape[0], opt.xp))
    for _ in range(steps):
        for p in params:
            p.grad[...] = rng.normal(size=p.shape).astype(np.float32)
        opt.step()
        opt.zero_grad()
    return pieces, [p.data.copy() for p in params], [a.copy() for a in opt.m + opt.v]


def test_adam_in_pieces_is_bit_identical_to_adam_in_one_piece(monkeypatch):
    one, params1, state1 = _train_adam(1, monkeypatch)
    three, params3, state3 = _train_adam(3, monkeypatch)
    assert (one, three) == (1, 3)
    for a, b in zip(params1 + state1, params3 + state3):
        np.testing.assert_array_equal(a, b)


def test_pieces_cover_the_vector_once_in_order(monkeypatch):
    monkeypatch.setenv("MINIVAE_THREADS", "4")
    n = 4 * parallel.MIN_PIECE + 3
    slices = parallel.pieces(n, np)
    assert len(slices) == 4
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))
    # small vectors, one thread, or a GPU namespace: one piece
    assert parallel.pieces(parallel.MIN_PIECE, np) == [slice(0, parallel.MIN_PIECE)]
    fake_gpu = type(sys)("cupy")
    assert parallel.pieces(n, fake_gpu) == [slice(0, n)]
    monkeypatch.setenv("MINIVAE_THREADS", "1")
    assert parallel.pieces(n, np) == [slice(0, n)]


def test_run_uses_threads_and_waits_for_all_before_raising(monkeypatch):
    monkeypatch.setenv("MINIVAE_THREADS", "2")
    seen, done = set(), []

    def work(piece):
        seen.add(threading.get_ident())
        done.append(piece)
        if piece.start == 0:
            raise RuntimeError("piece 0 failed")

    with pytest.raises(RuntimeError, match="piece 0 failed"):
        parallel.run(work, [slice(0, 1), slice(1, 2)])
    assert len(done) == 2 and len(seen) == 2


def test_a_bad_thread_setting_is_named(monkeypatch):
    monkeypatch.setenv("MINIVAE_THREADS", "many")
    with pytest.raises(ValueError) as info:
        parallel.threads()
    assert str(info.value) == "MINIVAE_THREADS must be a whole number of threads, got 'many'."


_SHOW = "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), mv.parallel.SPLIT_BY_DEFAULT)"


@pytest.mark.parametrize(
    "code, extra_env, expected",
    [
        (f"import minivae as mv, os; {_SHOW}", {}, "19 True"),
        (f"import numpy, minivae as mv, os; {_SHOW}", {}, "None False"),
        (f"import numpy, minivae as mv, os; {_SHOW}", {"OPENBLAS_THREAD_TIMEOUT": "5"}, "5 True"),
        (f"import minivae as mv, os; {_SHOW}", {"OPENBLAS_THREAD_TIMEOUT": "25"}, "25 True"),
    ],
)
def test_openblas_idle_threads_are_asked_to_sleep_only_before_numpy_loads(
    code, extra_env, expected
):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**env, **extra_env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
