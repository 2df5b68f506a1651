"""The fast path (minivae.fast) against the teaching path: the same numbers, step for step."""

import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import minivae as mv
from minivae import fast
from minivae.nn import Parameter

#: How far the fast path may drift from the teaching path, per dtype, on NumPy: not at all. Each
#: number goes through the same operations in the same order (see fast.Adam), so the two train
#: to the same bits. (A GPU kernel may contract a·b + c into one rounding: scripts/gpu_check.sh.)
TOLERANCE = {"float32": 0.0, "float64": 0.0}


def _train(opt_cls, dtype, x, steps, batch=64, seed=0):
    """The example recipe's VAE (784-400-20, ReLU, Bernoulli, Adam 1e-3) for ``steps`` steps."""
    model = mv.VAE(input_dim=784, hidden=[400], latent_dim=20, seed=seed, dtype=dtype)
    opt = opt_cls(model.parameters(), lr=1e-3)
    n = steps * batch
    history = mv.fit(model, opt, x[:n], epochs=1, batch_size=batch, seed=seed, progress=False)
    return model, opt, history


@pytest.fixture(scope="module")
def digits():
    x, _ = mv.datasets.load("embedded", split="train")
    return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_and_teaching_paths_train_the_real_vae_alike(digits, dtype):
    slow, slow_opt, slow_history = _train(mv.Adam, dtype, digits, steps=60)
    quick, quick_opt, quick_history = _train(fast.Adam, dtype, digits, steps=60)
    assert quick_opt.engine == "numba" and quick_opt.t == slow_opt.t == 60
    for p, q in zip(slow.parameters(), quick.parameters()):
        np.testing.assert_allclose(q.data, p.data, rtol=TOLERANCE[dtype], atol=0, err_msg=p.name)
    for name, arrays in slow_opt.buffers().items():
        for a, b in zip(arrays, quick_opt.buffers()[name]):
            np.testing.assert_allclose(b, a, rtol=TOLERANCE[dtype], atol=0, err_msg=name)
    assert quick_history["train_total"] == slow_history["train_total"]
    assert slow_history["train_total"][0] < 400  # it did learn: a start is about 540 nats


def test_three_hundred_steps_on_both_paths_end_in_the_same_model(digits):
    slow, _, _ = _train(mv.Adam, "float32", digits, steps=300, batch=12)
    quick, _, _ = _train(fast.Adam, "float32", digits, steps=300, batch=12)
    for p, q in zip(slow.parameters(), quick.parameters()):
        np.testing.assert_allclose(q.data, p.data, rtol=TOLERANCE["float32"], atol=0)


def test_without_numba_the_fast_optimizer_runs_the_teaching_rule_on_the_flat_buffer(
    digits, monkeypatch
):
    monkeypatch.setattr(fast, "_numba_adam", lambda: None)
    slow, _, _ = _train(mv.Adam, "float32", digits, steps=10)
    quick, opt, _ = _train(fast.Adam, "float32", digits, steps=10)
    assert opt.engine == "teaching rule"
    for p, q in zip(slow.parameters(), quick.parameters()):
        np.testing.assert_array_equal(q.data, p.data)


def test_the_fast_optimizer_keeps_every_parameter_in_one_flat_buffer():
    ps = [Parameter(np.ones((2, 3), dtype=np.float32)), Parameter(np.full(4, 2.0, np.float32))]
    ps[0].grad[...] = 0.5
    opt = fast.Adam(ps)
    assert np.shares_memory(ps[0].data, opt.flat_data)  # each parameter is a view
    assert np.shares_memory(ps[1].grad, opt.flat_grad)
    assert float(ps[0].grad[0, 0]) == 0.5  # values and gradients survive the move
    np.testing.assert_array_equal(ps[1].data, 2.0)
    views = [p.data for p in ps]
    opt.step()
    assert all(p.data is v for p, v in zip(ps, views)) and ps[0].data.dtype == np.float32
    assert float(ps[0].data[0, 0]) < 1.0 and float(ps[1].data[0]) == 2.0  # only ps[0] had a grad
    opt.zero_grad()
    assert not np.any(opt.flat_grad)


def test_a_second_fast_optimizer_on_one_model_is_refused_when_made():
    model = mv.VAE(input_dim=6, hidden=[5], latent_dim=2)
    first = fast.Adam(model.parameters())
    with pytest.raises(ValueError) as info:
        fast.Adam(model.parameters(), lr=0.1)
    assert (
        "Parameter encoder.0.W already lives in the flat buffer of another mv.fast.Adam, and a "
        "parameter can live in one only" in str(info.value)
    )
    first.step()  # the first one is unharmed
    teaching = mv.SGD(model.parameters(), lr=0.1)  # a teaching optimizer beside it works
    before = model.encoder[0].W.data.copy()
    model.encoder[0].W.grad[...] = 1.0
    teaching.step()
    first.step()
    assert not np.array_equal(before, model.encoder[0].W.data)


def test_a_fast_optimizer_that_is_gone_frees_the_parameters():
    model = mv.VAE(input_dim=6, hidden=[5], latent_dim=2)
    first = fast.Adam(model.parameters())
    del first
    fast.Adam(model.parameters())  # no error: nothing holds the old buffer


def test_a_teaching_optimizer_made_before_the_fast_one_says_why_it_stops():
    model = mv.VAE(input_dim=6, hidden=[5], latent_dim=2)
    teaching = mv.Adam(model.parameters())
    fast.Adam(model.parameters())
    with pytest.raises(mv.ReplacedArrayError, match="a mv.fast.Adam made after this optimizer"):
        teaching.step()


def test_like_carries_a_teaching_adam_on_exactly(digits):
    x = digits[:256]
    model = mv.VAE(input_dim=784, hidden=[32], latent_dim=4, seed=3)
    opt = mv.Adam(model.parameters(), lr=2e-3, betas=(0.8, 0.99))
    history = mv.fit(model, opt, x, epochs=1, batch_size=32, progress=False)
    twin = mv.VAE(input_dim=784, hidden=[32], latent_dim=4, seed=3)
    twin_opt = mv.Adam(twin.parameters(), lr=2e-3, betas=(0.8, 0.99))
    twin_history = mv.fit(twin, twin_opt, x, epochs=1, batch_size=32, progress=False)
    quick = fast.Adam.like(opt)
    assert quick.hyperparameters() == opt.hyperparameters() and quick.t == 8
    mv.fit(model, quick, x, epochs=2, batch_size=32, progress=False, history=history)
    mv.fit(twin, twin_opt, x, epochs=2, batch_size=32, progress=False, history=twin_history)
    for p, q in zip(twin.parameters(), model.parameters()):
        np.testing.assert_array_equal(q.data, p.data)
    with pytest.raises(TypeError, match="Adam.like takes an Adam optimizer, got SGD"):
        fast.Adam.like(mv.SGD(twin.parameters()))


def test_a_fast_optimizer_saves_and_resumes_like_the_teaching_one(tmp_path, digits):
    model = mv.VAE(input_dim=784, hidden=[16], latent_dim=2, seed=0)
    opt = fast.Adam(model.parameters())
    history = mv.fit(model, opt, digits[:128], epochs=1, batch_size=32, progress=False)
    path = mv.save(model, tmp_path / "m.npz", optimizer=opt, history=history)
    _, again, _ = mv.resume(path)
    assert type(again) is mv.Adam and again.t == opt.t
    for a, b in zip(again.buffers()["v"], opt.buffers()["v"]):
        np.testing.assert_array_equal(a, b)


def test_threads_sets_blas_threads_for_the_block_and_puts_them_back(monkeypatch):
    def blas_threads():
        return sorted(
            {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
        )

    outside = blas_threads()
    with fast.threads(1) as n:
        assert n == 1 and blas_threads() == [1]
    assert blas_threads() == outside
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.setattr(fast, "busy_cores", lambda: 0.0)
    with fast.threads() as n:
        assert n == cores  # a quiet machine: every core
    monkeypatch.setattr(fast, "busy_cores", lambda: 50.0)
    with fast.threads() as n:
        assert n == 1  # every core busy: one thread


_SHOW = (
    "import json, os; from threadpoolctl import threadpool_info; "
    "print(json.dumps([dict(os.environ), [l['num_threads'] for l in threadpool_info()]]))"
)


@pytest.mark.slow
def test_importing_minivae_changes_nothing_outside_it_whatever_the_order():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    outputs = []
    for imports in ("import numpy; import minivae", "import minivae; import numpy", "import numpy"):
        result = subprocess.run(
            [sys.executable, "-c", f"{imports}; {_SHOW}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] == outputs[2]


#: The fused CuPy kernel against the teaching path on the GPU, after 60 steps: a GPU compiler may
#: fuse a·b + c into one rounding, so not to the bit. Not yet measured on a device.
GPU_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_fused_cupy_kernel_follows_the_teaching_path(digits, monkeypatch, dtype):
    try:
        mv.set_backend("cupy")
    except mv.BackendError as err:
        pytest.skip(f"the cupy backend cannot run here: {err}")
    monkeypatch.setattr(fast, "CUPY_KERNELS", True)
    try:
        slow, _, slow_history = _train(mv.Adam, dtype, digits, steps=60)
        quick, opt, quick_history = _train(fast.Adam, dtype, digits, steps=60)
        assert opt.engine == "cupy kernel"  # the fused kernel ran, not the fallback
        np.testing.assert_allclose(
            quick_history["train_total"], slow_history["train_total"], rtol=GPU_TOLERANCE[dtype]
        )
        for p, q in zip(slow.parameters(), quick.parameters()):
            np.testing.assert_allclose(
                mv.asnumpy(q.data), mv.asnumpy(p.data), atol=GPU_TOLERANCE[dtype], err_msg=p.name
            )
    finally:
        mv.set_backend("numpy")
