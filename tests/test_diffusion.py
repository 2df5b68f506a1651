"""Latent diffusion (minivae.diffusion) and the sample-quality measures (minivae.metrics)."""

import math

import numpy as np
import pytest
from conftest import assert_on_backend

import minivae as mv
from minivae import diffusion, metrics
from minivae.checkpoint import CheckpointError


def _mixture(n, seed, std=0.15, radius=2.0):
    """n points from four Gaussians with standard deviation ``std`` at the corners of a square."""
    r = np.random.default_rng(seed)
    k = r.integers(0, 4, size=n)
    centres = _centres(radius)
    return (centres[k] + std * r.normal(size=(n, 2))).astype(np.float32)


def _centres(radius=2.0):
    angle = np.arange(4) * np.pi / 2
    return radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)


@pytest.fixture(scope="module")
def trained():
    """A small prior fitted to the four-mode mixture (about a second)."""
    model = diffusion.LatentDiffusion(2, hidden=[128, 128], steps=100, seed=0)
    history = diffusion.train(model, _mixture(4000, seed=0), steps=2000, lr=2e-3, seed=0)
    return model, history


# -- the schedule and the forward process -----------------------------------------------------
def test_linear_schedule_is_ho_et_al():
    s = diffusion.Schedule("linear", 1000)
    assert s.beta[0] == 0 and s.alpha_bar[0] == 1
    assert s.beta[1] == pytest.approx(1e-4) and s.beta[1000] == pytest.approx(0.02)
    assert np.allclose(s.alpha_bar[1:], np.cumprod(1 - s.beta[1:]))
    assert s.alpha_bar[-1] < 1e-4  # z_T is (almost) pure noise


def test_cosine_schedule_follows_its_formula():
    T, s_ = 200, 0.008
    s = diffusion.Schedule("cosine", T)
    t = np.arange(T + 1)
    f = np.cos((t / T + s_) / (1 + s_) * np.pi / 2) ** 2
    # ᾱ_t = f(t)/f(0) wherever β was not capped at 0.999 (only the very last step is)
    assert np.allclose(s.alpha_bar[:-1], (f / f[0])[:-1], rtol=1e-10)
    assert s.beta.max() <= 0.999 and np.all(np.diff(s.alpha_bar) < 0)


def test_posterior_variance_is_beta_tilde():
    s = diffusion.Schedule("linear", 50)
    t = 7
    expected = (1 - s.alpha_bar[t - 1]) / (1 - s.alpha_bar[t]) * s.beta[t]
    assert s.posterior_var[t] == pytest.approx(expected) and s.posterior_var[1] == 0


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_forward_process_matches_its_closed_form(name):
    """z_t stepped one noise step at a time has mean √ᾱ_t·z_0 and variance 1 − ᾱ_t (Monte Carlo,
    within 4 standard errors); q_sample and q_mean_var give that in one step."""
    s = diffusion.Schedule(name, 100)
    r = np.random.default_rng(0)
    n, t = 40_000, 60
    z0 = np.array([[1.5, -0.7]])
    z = np.repeat(z0, n, axis=0)
    for step in range(1, t + 1):  # z_t = √α_t·z_{t−1} + √β_t·ξ
        z = np.sqrt(s.alpha[step]) * z + np.sqrt(s.beta[step]) * r.normal(size=z.shape)
    mean, var = s.q_mean_var(z0, np.array([t]))
    a = s.alpha_bar[t]
    assert np.allclose(mean, np.sqrt(a) * z0) and np.allclose(var, 1 - a)
    se_mean = np.sqrt(var[0, 0] / n)
    se_var = var[0, 0] * np.sqrt(2.0 / (n - 1))
    assert np.all(np.abs(z.mean(0) - mean[0]) < 4 * se_mean)
    assert np.all(np.abs(z.var(0, ddof=1) - var[0, 0]) < 4 * se_var)
    one_step = s.q_sample(np.repeat(z0, n, 0), np.full(n, t), r.normal(size=(n, 2)))
    assert np.all(np.abs(one_step.mean(0) - mean[0]) < 4 * se_mean)
    assert np.all(np.abs(one_step.var(0, ddof=1) - var[0, 0]) < 4 * se_var)


def test_time_features_are_sines_and_cosines():
    f = diffusion.time_features(np.array([0, 5]), 8, np.zeros(1))
    assert f.shape == (2, 8)
    assert np.allclose(f[0], [0, 0, 0, 0, 1, 1, 1, 1])
    omega = 10000.0 ** (-np.arange(4) * 2 / 8)
    assert np.allclose(f[1], np.concatenate([np.sin(5 * omega), np.cos(5 * omega)]))


# -- the denoiser's gradients -----------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_gradient_of_the_loss_for_every_parameter(backend, to_backend, schedule):
    model = diffusion.LatentDiffusion(
        3, hidden=[8, 8], steps=40, schedule=schedule, time_dim=6, dtype="float64", seed=0
    )
    r = np.random.default_rng(1)
    z0, eps = to_backend(r.normal(size=(5, 3))), to_backend(r.normal(size=(5, 3)))
    t = r.integers(1, 41, size=5)
    model.data_mean[...] = to_backend([0.3, -0.2, 0.1])  # standardizing is part of the loss
    model.data_std[...] = to_backend([1.5, 0.5, 2.0])
    errors = mv.gradcheck.model_errors(model, z0, t=t, eps=eps)
    assert set(errors) == {p.name for p in model.parameters()} and len(errors) == 6
    assert max(errors.values()) < 1e-6, errors
    assert_on_backend(model.parameters()[0].grad)


def test_loss_is_l_simple():
    model = diffusion.LatentDiffusion(2, hidden=[4], steps=10, dtype="float64", seed=0)
    r = np.random.default_rng(2)
    z0, eps, t = r.normal(size=(6, 2)), r.normal(size=(6, 2)), r.integers(1, 11, size=6)
    a = model.schedule.alpha_bar[t][:, None]
    z_t = np.sqrt(a) * z0 + np.sqrt(1 - a) * eps
    expected = np.mean(np.sum((eps - model.predict_noise(z_t, t)) ** 2, axis=1))
    assert model.loss(z0, t=t, eps=eps).total == pytest.approx(expected)


# -- sampling ---------------------------------------------------------------------------------
def test_samples_land_on_the_modes_of_a_mixture(trained):
    model, history = trained
    assert history[-1] < history[0]
    fresh = _mixture(1000, seed=1)
    prior = np.random.default_rng(2).normal(size=(1000, 2))
    for kwargs in ({}, {"sampler": "ddim", "steps": 25}):
        z = np.asarray(model.sample(1000, seed=3, **kwargs))
        near = np.min(np.linalg.norm(z[:, None] - _centres()[None], axis=2), axis=1) < 0.45
        assert near.mean() > 0.8, kwargs  # 3 standard deviations of a mode: 99% of real points
        h = metrics.median_bandwidth(fresh)
        on_data = metrics.mmd2(z, fresh, bandwidth=h)
        off_data = metrics.mmd2(prior, fresh, bandwidth=h)
        assert on_data < 0.1 * off_data, (kwargs, on_data, off_data)
        counts = np.bincount(np.argmin(np.linalg.norm(z[:, None] - _centres(), axis=2), 1))
        assert counts.min() > 150, counts  # every mode is visited, about a quarter each


def test_sampling_is_seeded(trained):
    model, _ = trained
    assert np.array_equal(model.sample(20, seed=5), model.sample(20, seed=5))
    assert not np.array_equal(model.sample(20, seed=5), model.sample(20, seed=6))


def test_ddim_with_every_step_is_its_definition(trained):
    """η = 0 through t = T, T − 1, …, 1: ẑ_0 = (z_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t, then
    z_{t−1} = √ᾱ_{t−1}·ẑ_0 + √(1 − ᾱ_{t−1})·ε̂, written out here from the paper."""
    model, _ = trained
    model64 = _copy_to_float64(model)
    T, ab = model64.schedule.T, model64.schedule.alpha_bar
    z = np.random.default_rng(9).standard_normal((50, 2))  # what the sampler draws for seed 9
    for t in range(T, 0, -1):
        eps_hat = model64.predict_noise(z, np.full(50, t))
        z0_hat = (z - np.sqrt(1 - ab[t]) * eps_hat) / np.sqrt(ab[t])
        z = np.sqrt(ab[t - 1]) * z0_hat + np.sqrt(1 - ab[t - 1]) * eps_hat
    got = model64.sample(50, seed=9, sampler="ddim", steps=T)
    assert np.allclose(got, model64.unstandardize(z), rtol=1e-10, atol=1e-10)


def test_ddim_with_eta_one_and_every_step_is_ddpm(trained):
    model64 = _copy_to_float64(trained[0])
    ddpm = model64.sample(40, seed=4)
    ddim = model64.sample(40, seed=4, sampler="ddim", eta=1.0)
    assert np.allclose(ddpm, ddim, rtol=1e-9, atol=1e-9)


def test_ddim_timesteps():
    model = diffusion.LatentDiffusion(2, hidden=[4], steps=100, seed=0)
    assert model.ddim_timesteps(100) == list(range(100, 0, -1))
    taus = model.ddim_timesteps(10)
    assert taus[0] == 100 and taus[-1] == 1 and len(set(taus)) == 10
    assert model.ddim_timesteps(1) == [100]


def _copy_to_float64(model):
    copy = diffusion.LatentDiffusion(**_settings(model), dtype="float64", seed=None)
    for p, q in zip(copy.parameters(), model.parameters()):
        p.data[...] = q.data
    copy.data_mean[...] = model.data_mean
    copy.data_std[...] = model.data_std
    return copy


def _settings(model):
    return {k: v for k, v in model.config.items() if k not in ("kind", "dtype")}


# -- checkpoints ------------------------------------------------------------------------------
def test_save_and_load_round_trip(trained, tmp_path):
    model, _ = trained
    path = diffusion.save(model, tmp_path / "prior.npz")
    again = diffusion.load(path)
    assert again.config == model.config
    for p, q in zip(again.parameters(), model.parameters()):
        assert p.name == q.name and np.array_equal(p.data, q.data)
    assert np.array_equal(again.sample(10, seed=1), model.sample(10, seed=1))
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".tmp-")]


def test_loading_the_wrong_kind_of_file_says_so(trained, tmp_path):
    model, _ = trained
    vae_path = mv.save(mv.VAE(input_dim=6, hidden=[4], latent_dim=2), tmp_path / "vae.npz")
    with pytest.raises(CheckpointError, match=r"holds a 'vae' model, not a latent diffusion"):
        diffusion.load(vae_path)
    prior_path = diffusion.save(model, tmp_path / "prior.npz")
    with pytest.raises(CheckpointError, match="unknown model kind 'latent-diffusion'"):
        mv.load(prior_path)
    with pytest.raises(CheckpointError, match="No checkpoint at"):
        diffusion.load(tmp_path / "missing.npz")


def test_a_damaged_prior_is_refused(trained, tmp_path):
    model, _ = trained
    path = diffusion.save(model, tmp_path / "prior.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["scale/std"] = np.full_like(arrays["scale/std"], np.nan)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        diffusion.load(tmp_path / "bad.npz")


# -- bad inputs: one sentence each ------------------------------------------------------------
@pytest.mark.parametrize(
    "call, words",
    [
        pytest.param(
            lambda m: diffusion.LatentDiffusion(2, steps=0),
            "Schedule: steps (T) must be a whole number ≥ 1, got 0.",
            id="zero-steps",
        ),
        pytest.param(
            lambda m: diffusion.LatentDiffusion(2, schedule="square"),
            "Unknown schedule 'square': choose 'linear' or 'cosine'.",
            id="unknown-schedule",
        ),
        pytest.param(
            lambda m: m.sample(4, sampler="ddim", steps=0),
            "LatentDiffusion.sample: steps must be a whole number ≥ 1, got 0.",
            id="zero-sampling-steps",
        ),
        pytest.param(
            lambda m: m.sample(4, sampler="ddim", steps=101),
            "steps must be at most T = 100 (the steps the model was trained on), got 101.",
            id="too-many-sampling-steps",
        ),
        pytest.param(
            lambda m: m.sample(4, steps=10),
            "DDPM goes through all T = 100 steps; for 10 steps use sampler='ddim'.",
            id="ddpm-with-fewer-steps",
        ),
        pytest.param(
            lambda m: m.loss(np.zeros((3, 5))),
            "LatentDiffusion.loss: z0 has shape (3, 5); expected (batch, 2)",
            id="wrong-latent-width",
        ),
        pytest.param(
            lambda m: m.loss(np.zeros((3, 2)), t=np.array([0, 1, 2])),
            "LatentDiffusion.loss: steps run from 1 to T = 100, got 0 to 2.",
            id="step-out-of-range",
        ),
        pytest.param(
            lambda m: diffusion.train(m, np.zeros((8, 2)), steps=0),
            "diffusion.train: steps must be a whole number ≥ 1, got 0.",
            id="zero-training-steps",
        ),
    ],
)
def test_bad_inputs_get_one_sentence(call, words, request):
    model = diffusion.LatentDiffusion(2, hidden=[4], steps=100, seed=0)
    with pytest.raises(ValueError) as info:
        call(model)
    message = str(info.value)
    assert words in message and "\n" not in message, message
    # codes and steps handed to the model are data: InputError, a ValueError (docs/errors.md)
    data = "width" in request.node.name or "range" in request.node.name
    assert isinstance(info.value, mv.validate.InputError) == data, type(info.value).__name__


# -- the measures -----------------------------------------------------------------------------
def test_mmd_is_about_zero_for_one_distribution_and_grows_with_a_shift():
    r = np.random.default_rng(0)
    a, b = r.normal(size=(400, 3)), r.normal(size=(400, 3))
    same = metrics.mmd2(a, b)
    shifted = [metrics.mmd2(a, b + s, bandwidth=1.0) for s in (0.25, 0.5, 1.0)]
    assert abs(same) < 0.01 and shifted[0] < shifted[1] < shifted[2] and shifted[0] > 0.01


def test_mmd_matches_its_definition():
    r = np.random.default_rng(1)
    x, y, h = r.normal(size=(5, 2)), r.normal(size=(4, 2)) + 1, 0.7

    def k(a, b):
        return math.exp(-np.sum((a - b) ** 2) / (2 * h * h))

    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(4) for j in range(4) if i != j) / 12
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(4)) / 20
    assert metrics.mmd2(x, y, bandwidth=h) == pytest.approx(xx + yy - 2 * xy)


def test_frechet_distance_of_gaussians():
    """Between N(0, I) and N(m, 4I) in 4-D the closed form is ‖m‖² + 4·(1 + 4 − 2·2) = ‖m‖² + 4."""
    r = np.random.default_rng(0)
    m = np.array([1.0, 0.0, -1.0, 0.5])
    f, g = r.normal(size=(20000, 4)), m + 2 * r.normal(size=(20000, 4))
    assert metrics.frechet_distance(f, g) == pytest.approx(np.sum(m**2) + 4, rel=0.05)
    assert abs(metrics.frechet_distance(f, f)) < 1e-8


def test_feature_classifier_learns_and_gives_features():
    x, y = mv.datasets.load("embedded", split="train")
    x_test, y_test = mv.datasets.load("embedded", split="test")
    clf = metrics.FeatureClassifier(hidden=(64, 32), seed=0).fit(x, y, epochs=3)
    assert clf.accuracy(x_test, y_test) > 0.8
    assert clf.features(x_test[:10]).shape == (10, 32)
    h = metrics.reference_bandwidths(x[:300], clf)
    scores = metrics.compare(x_test[:300], x[:300], clf, h)
    assert set(scores) == {"mmd2_pixels", "mmd2_features", "frechet_features"}
    assert scores["mmd2_pixels"] == pytest.approx(metrics.mmd2(x_test[:300], x[:300], h[0]))


# -- the command line: python -m minivae diffuse ----------------------------------------------
@pytest.fixture(scope="module")
def vae_checkpoint(tmp_path_factory):
    """A small VAE trained for one epoch on the embedded subset, saved as model.npz."""
    x, _ = mv.datasets.load("embedded", split="train")
    vae = mv.VAE(input_dim=784, hidden=[32], latent_dim=3, seed=0)
    mv.fit(vae, mv.Adam(vae.parameters()), x[:1000], epochs=1, progress=False)
    return mv.save(vae, tmp_path_factory.mktemp("run") / "model.npz")


QUICK = ["--steps", "30", "--T", "40", "--hidden", "16", "--n", "8", "--no-progress"]


def _diffuse(capsys, *args):
    from minivae.__main__ import main

    code = main(["diffuse", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_fits_a_prior_and_samples(vae_checkpoint, tmp_path, capsys):
    out = tmp_path / "diffusion"
    code, stdout, _ = _diffuse(capsys, vae_checkpoint, *QUICK, "--out", out)
    assert code == 0, stdout
    names = {p.name for p in out.iterdir()}
    assert {"prior.npz", "samples.npy", "history.json", "summary.json", "figures"} <= names
    figures = {p.name for p in (out / "figures").iterdir()}
    assert figures == {"samples.png", "prior_vs_diffusion.png", "loss.png", "latents.png"}
    assert np.load(out / "samples.npy").shape == (8, 784)
    assert diffusion.load(out / "prior.npz").latent_dim == 3
    # sampling again from the saved prior, with DDIM
    again = tmp_path / "again"
    args = ["--prior", out / "prior.npz", "--sampler", "ddim", "--sample-steps", "5"]
    code, stdout, _ = _diffuse(capsys, vae_checkpoint, *args, "--out", again, "--no-figures")
    assert code == 0 and (again / "samples.npy").exists() and not (again / "prior.npz").exists()


def test_cli_bad_inputs_get_one_sentence(vae_checkpoint, tmp_path, capsys):
    ae = mv.save(mv.Autoencoder(input_dim=784, hidden=[8], latent_dim=3), tmp_path / "ae.npz")
    other = diffusion.save(diffusion.LatentDiffusion(5, hidden=[4], steps=10), tmp_path / "p.npz")
    cases = [
        ([ae], "holds a plain autoencoder, not a VAE"),
        ([other], "is a latent diffusion prior, not a VAE"),
        ([vae_checkpoint, "--prior", other], "makes 5-D codes but the VAE"),
        ([vae_checkpoint, "--sample-steps", "5"], "--sample-steps is for --sampler ddim"),
        ([tmp_path / "nothing.npz"], "No checkpoint at"),
    ]
    for args, words in cases:
        code, _, err = _diffuse(capsys, *args, *QUICK, "--out", tmp_path / "o", "--no-figures")
        assert code == 1 and words in err and err.count("\n") == 1, err
    with pytest.raises(SystemExit) as info:
        _diffuse(capsys, vae_checkpoint, "--steps", "0")
    assert info.value.code == 2
    assert "expected a whole number ≥ 1, got 0" in capsys.readouterr().err
