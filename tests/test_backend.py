import sys

import numpy as np
import pytest

import minivae as mv
from minivae import backend


def test_numpy_is_the_default_and_float32():
    assert mv.get_backend() == "numpy"
    assert mv.xp is backend.xp
    model = mv.VAE(input_dim=6, hidden=[4], latent_dim=2)
    assert all(p.data.dtype == np.float32 for p in model.parameters())
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_float64_on_request():
    model = mv.VAE(input_dim=6, hidden=[4], latent_dim=2, dtype="float64")
    assert all(p.data.dtype == np.float64 for p in model.parameters())
    mv.set_dtype("float64")
    assert mv.Autoencoder(input_dim=6, hidden=[4], latent_dim=2).dtype == "float64"


def test_bad_dtype_and_backend_names():
    with pytest.raises(ValueError, match="float32' or 'float64"):
        mv.set_dtype("float16")
    with pytest.raises(mv.BackendError, match="Unknown backend 'jax'"):
        mv.set_backend("jax")
    assert mv.get_backend() == "numpy"


def test_set_backend_switches_mv_xp():
    pytest.importorskip("array_api_strict")
    mv.set_backend("array_api_strict")
    import array_api_strict

    assert mv.xp is array_api_strict
    assert mv.get_backend() == "array_api_strict"
    model = mv.Autoencoder(input_dim=5, hidden=[3], latent_dim=2)
    assert mv.backend.namespace(model.parameters()[0].data) is array_api_strict


def test_cupy_missing_gives_one_clear_sentence(monkeypatch):
    # Pretend CuPy is not installed, whatever this machine has.
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(mv.BackendError) as info:
        mv.set_backend("cupy")
    message = str(info.value)
    assert "pip install minivae[gpu]" in message
    assert "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert mv.get_backend() == "numpy"


def test_cupy_without_gpu_says_so(monkeypatch):
    class FakeRuntime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("cudaErrorNoDevice")

    class FakeCupy:
        class cuda:
            runtime = FakeRuntime

    monkeypatch.setitem(sys.modules, "cupy", FakeCupy)
    with pytest.raises(mv.BackendError, match="no CUDA GPU is visible"):
        mv.set_backend("cupy")


def test_asnumpy_and_asarray_round_trip(backend):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = mv.asarray(a)
    assert backend_namespace_is_active(b)
    back = mv.asnumpy(b)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, a)
    assert mv.asarray(a, dtype="float64").dtype == mv.xp.float64


def backend_namespace_is_active(a):
    return mv.backend.namespace(a) is mv.xp


def test_rng_is_seeded_and_reproducible(backend):
    a = mv.asnumpy(mv.rng(3).normal((4, 5)))
    b = mv.asnumpy(mv.rng(3).normal((4, 5)))
    c = mv.asnumpy(mv.rng(4).normal((4, 5)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.dtype == np.float32
    u = mv.asnumpy(mv.rng(0).uniform((1000,), -2.0, 3.0, dtype="float64"))
    assert u.dtype == np.float64 and u.min() >= -2.0 and u.max() < 3.0
    assert sorted(mv.rng(0).permutation(10).tolist()) == list(range(10))


def test_same_seed_same_model_on_every_backend(backend):
    model = mv.VAE(input_dim=6, hidden=[4], latent_dim=2, seed=7)
    mv.set_backend("numpy")
    reference = mv.VAE(input_dim=6, hidden=[4], latent_dim=2, seed=7)
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(mv.asnumpy(p.data), q.data)


def test_available_backends_lists_numpy_first():
    names = mv.available_backends()
    assert names[0] == "numpy"
    assert set(names) <= {"numpy", "array_api_strict", "cupy"}
