"""Property-based tests (hypothesis): on any input, the readers fail only with their own clear
error, the losses stay finite at extreme values, and gradient checks pass on random shapes.
"""

import gzip
import io
import json
import math
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minivae as mv
from minivae import datasets, losses
from minivae.checkpoint import CheckpointError
from minivae.datasets import DatasetError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the IDX reader --------------------------------------------------------------------------------
def _idx(dims, payload, type_code=0x08):
    return bytes([0, 0, type_code, len(dims)]) + np.array(dims, ">u4").tobytes() + payload


@FAST
@given(st.binary(max_size=300))
def test_read_idx_on_any_bytes_raises_only_dataset_error(data):
    try:
        out = datasets.read_idx(data)
    except DatasetError as err:
        assert str(err).startswith("<bytes>: ")
        return
    assert out.dtype == np.uint8
    if data[:2] != b"\x1f\x8b":  # (not gzip) the payload is exactly what the header declares
        assert out.size == len(data) - 4 - 4 * out.ndim


@FAST
@example(dims=[0, 322885, 5343676, 5345665], extra=0, type_code=0x08, zipped=False)
@given(
    dims=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=4),
    extra=st.integers(-8, 8),
    type_code=st.sampled_from([0x08, 0x08, 0x09, 0x0D, 0x42]),
    zipped=st.booleans(),
)
def test_read_idx_on_any_header_raises_only_dataset_error(dims, extra, type_code, zipped):
    # headers that look right, payloads near the declared size (or far from it when it is huge)
    size = max(0, min(math.prod(dims), 64) + extra)
    data = _idx(dims, bytes(size), type_code)
    cut = zipped and extra < 0
    if zipped:
        data = gzip.compress(data)
        data = data[:extra] if cut else data
    try:
        out = datasets.read_idx(data)
    except DatasetError as err:
        assert str(err).startswith("<bytes>: ")
        return
    assert type_code == 0x08 and not cut and len(dims) > 0
    assert tuple(out.shape) == tuple(dims) and out.size == size


# -- the checkpoint loader -------------------------------------------------------------------------
def _checkpoint_bytes():
    """The bytes of a small, good checkpoint with optimizer state and history."""
    model = mv.VAE(input_dim=6, hidden=[4], latent_dim=2, seed=0)
    opt = mv.Adam(model.parameters())
    with tempfile.TemporaryDirectory() as folder:
        path = mv.save(model, f"{folder}/m.npz", optimizer=opt, history={"epoch": []})
        with open(path, "rb") as f:
            return f.read()


GOOD = _checkpoint_bytes()


def _load_bytes(tmp_path_factory, data, resume=False):
    path = tmp_path_factory.mktemp("ckpt") / "x.npz"
    path.write_bytes(data)
    try:
        (mv.resume if resume else mv.load)(path)
    except CheckpointError as err:
        assert str(err)  # a sentence, not an empty error
        return False
    return True


@FAST
@given(st.binary(max_size=400))
def test_load_on_any_bytes_raises_only_checkpoint_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("ckpt") / "x.npz"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):  # random bytes are never a checkpoint
        mv.load(path)


@FAST
@given(
    edits=st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, len(GOOD)),
    resume=st.booleans(),
)
def test_load_on_damaged_checkpoints_raises_only_checkpoint_error(
    tmp_path_factory, edits, cut, resume
):
    data = bytearray(GOOD[:cut])
    for i, value in edits:
        if i < len(data):
            data[i] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile may warn about duplicate names
        ok = _load_bytes(tmp_path_factory, bytes(data), resume)
    if ok:  # a cut file never loads; a few edited bytes may (in padding, or unchanged)
        assert len(data) == len(GOOD)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 50) | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_keys = ["kind", "input_dim", "hidden", "latent_dim", "likelihood", "beta", "lam", "activation"]


@FAST
@given(
    changes=st.dictionaries(st.sampled_from(_keys + ["dtype", "extra"]), _json, max_size=3),
    optimizer=st.one_of(st.none(), st.dictionaries(st.sampled_from(["kind", "t", "lr"]), _json)),
    history=_json,
    resume=st.booleans(),
)
def test_load_on_any_meta_raises_only_checkpoint_error(
    tmp_path_factory, changes, optimizer, history, resume
):
    with np.load(io.BytesIO(GOOD)) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    meta["config"].update(changes)
    if optimizer is not None:
        meta["optimizer"] = optimizer
    meta["history"] = history
    try:
        arrays["meta"] = np.array(json.dumps(meta))
    except ValueError:  # NaN is not JSON: nothing to test
        assume(False)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _load_bytes(tmp_path_factory, buf.getvalue(), resume)


# -- losses at extreme values ----------------------------------------------------------------------
def _batch(dtype, low, high, shape=(3, 5)):
    return arrays(dtype, shape, elements=st.floats(low, high, width=np.dtype(dtype).itemsize * 8))


@FAST
@given(st.data(), st.sampled_from([np.float32, np.float64]))
def test_bernoulli_nll_is_finite_for_any_logits(data, dtype):
    logits = data.draw(_batch(dtype, -1e4, 1e4))
    x = data.draw(_batch(dtype, 0.0, 1.0))
    value, grad = losses.bernoulli_nll(logits, x)
    assert np.isfinite(value) and value >= 0
    assert np.all(np.isfinite(grad))
    assert np.all(np.abs(grad) <= 1.0 / 3 + 1e-6)  # (σ(l) − x) / B with B = 3


@FAST
@given(st.data(), st.sampled_from([np.float32, np.float64]))
def test_a_vae_stays_finite_for_any_log_variance_output(data, dtype):
    """The raw log σ² (±1e3: e¹⁰⁰⁰ overflows any float) is clamped before exp."""
    name = np.dtype(dtype).name
    model = mv.VAE(input_dim=5, hidden=[4], latent_dim=3, seed=0, dtype=name, activation="tanh")
    model.logvar_head.b.data[...] = data.draw(_batch(dtype, -1e3, 1e3, shape=(3,)))
    model.mu_head.b.data[...] = data.draw(_batch(dtype, -1e3, 1e3, shape=(3,)))
    x = data.draw(_batch(dtype, 0.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow anywhere
        terms = model.loss(x)
        model.backward()
    assert np.isfinite([terms.total, terms.recon, terms.kl]).all()
    for p in model.parameters():
        assert np.all(np.isfinite(p.grad)), p.name


@FAST
@given(st.data())
def test_kl_and_gaussian_nll_are_finite_within_the_clamp(data):
    lo, hi = mv.models.LOGVAR_RANGE
    mu = data.draw(_batch(np.float32, -1e4, 1e4))
    logvar = data.draw(_batch(np.float32, lo, hi))
    value, dmu, dlogvar = losses.kl_standard_normal(mu, logvar)
    # KL ≥ 0 exactly; in float32 the sum can land a rounding error below 0 when it is near 0
    scale = np.sum(np.exp(logvar.astype(np.float64)) + mu.astype(np.float64) ** 2 + 1) / len(mu)
    assert np.isfinite(value) and value >= -1e-6 * scale
    assert np.all(np.isfinite(dmu)) and np.all(np.isfinite(dlogvar))
    x = data.draw(_batch(np.float32, -1e4, 1e4))
    value, grad = losses.gaussian_nll(mu, x, lam=0.5)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


# -- gradient checks on random shapes --------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(
    in_dim=st.integers(1, 6),
    out_dim=st.integers(1, 6),
    batch=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_linear_gradients_on_random_shapes(in_dim, out_dim, batch, seed):
    layer = mv.nn.Linear(in_dim, out_dim, seed=seed, dtype="float64")
    layer.b.data[...] = np.random.default_rng(seed).standard_normal(out_dim)
    x = np.random.default_rng(seed + 1).standard_normal((batch, in_dim))
    assert mv.gradcheck.check_module(layer, x) < 1e-7


@settings(max_examples=10, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=0, max_size=2),
    input_dim=st.integers(1, 5),
    latent_dim=st.integers(1, 3),
    batch=st.integers(1, 4),
    likelihood=st.sampled_from(["bernoulli", "gaussian"]),
    seed=st.integers(0, 2**16),
)
def test_whole_vae_gradients_on_random_shapes(
    sizes, input_dim, latent_dim, batch, likelihood, seed
):
    model = mv.VAE(
        input_dim=input_dim,
        hidden=sizes,
        latent_dim=latent_dim,
        likelihood=likelihood,
        activation="tanh",
        seed=seed,
        dtype="float64",
    )
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch, input_dim))
    eps = rng.standard_normal((batch, latent_dim))
    assert mv.gradcheck.check_model(model, x, eps=eps) < 1e-7
