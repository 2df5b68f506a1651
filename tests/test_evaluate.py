"""Evaluation: the ELBO, the importance-weighted log p(x), KL per dimension and active units.

The centre-piece is a linear-Gaussian VAE whose log p(x) is known in closed form: with its
encoder set to the exact posterior, every importance weight equals p(x), so the estimate must
match the exact value to rounding error; with a worse encoder the ELBO and the IW bound must sit
below it, the IW bound closer.
"""

import math

import numpy as np
import pytest

import minivae as mv
from minivae import evaluate


def _binary_data(n, d, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.3).astype(np.float64)


@pytest.fixture
def small_vae():
    return mv.VAE(input_dim=20, hidden=[16], latent_dim=3, seed=0, dtype="float64")


# -- a linear-Gaussian VAE with a known log p(x) ------------------------------------------------
def _linear_gaussian(D=6, L=2, lam=2.0, seed=0):
    """A VAE with no hidden layers and a Gaussian decoder, x = z·W + b + noise (σ² = 1/(2λ)), and
    its encoder set to the exact posterior. W has orthogonal rows, so that posterior is
    diagonal: q(z|x) = N(M⁻¹ W (x − b) / σ², M⁻¹) with M = I + W Wᵀ / σ²."""
    rng = np.random.default_rng(seed)
    model = mv.VAE(
        input_dim=D, hidden=[], latent_dim=L, likelihood="gaussian", lam=lam, dtype="float64"
    )
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    W = q[:L] * np.array([1.5, 0.7])[:L, None]  # rows orthogonal, of lengths 1.5 and 0.7
    b = rng.standard_normal(D)
    var = 1.0 / (2.0 * lam)
    m_inv = 1.0 / (1.0 + np.diag(W @ W.T) / var)  # the diagonal of M⁻¹
    A = W.T * m_inv / var  # μ = (x − b)·A
    model.decoder[0].W.data[...] = W
    model.decoder[0].b.data[...] = b
    model.mu_head.W.data[...] = A
    model.mu_head.b.data[...] = -b @ A
    model.logvar_head.W.data[...] = 0.0
    model.logvar_head.b.data[...] = np.log(m_inv)
    cov = W.T @ W + var * np.eye(D)
    x = rng.multivariate_normal(b, cov, size=200)
    _, logdet = np.linalg.slogdet(cov)
    diff = x - b
    maha = np.einsum("nd,de,ne->n", diff, np.linalg.inv(cov), diff)
    exact = -0.5 * (maha + logdet + D * math.log(2 * math.pi))
    return model, x, exact


def test_exact_posterior_gives_exact_log_likelihood():
    model, x, exact = _linear_gaussian()
    for k in (1, 7):
        est = evaluate.log_likelihood(model, x, k=k, per_example=True)
        np.testing.assert_allclose(est, exact, rtol=0, atol=1e-9)
    assert evaluate.log_likelihood(model, x, k=3) == pytest.approx(exact.mean(), abs=1e-9)
    # with the exact posterior the ELBO is tight: −total matches log p(x) up to Monte Carlo noise
    assert -evaluate.elbo(model, x)["total"] == pytest.approx(exact.mean(), abs=0.1)


def test_iw_bound_lies_between_elbo_and_exact_log_likelihood():
    model, x, exact = _linear_gaussian()
    # A worse encoder: q(z|x) off-centre and too wide. (Too *narrow* a q makes the importance
    # weights heavy-tailed, and then even k = 50000 leaves a visible gap.)
    model.mu_head.b.data[...] += 0.5
    model.logvar_head.b.data[...] += 0.7
    elbo = -evaluate.elbo(model, x)["total"]
    iw = evaluate.log_likelihood(model, x, k=500, batch_size=20_000)
    truth = exact.mean()
    assert truth - elbo > 1.0  # the ELBO is a loose bound here ...
    assert elbo < iw < truth + 0.01
    assert truth - iw < 0.02  # ... and k = 500 importance samples close the gap


# -- the IW estimate against the ELBO ------------------------------------------------------------
def test_k1_matches_the_elbo_in_expectation(small_vae):
    x = _binary_data(4000, 20)
    per_example = evaluate.log_likelihood(small_vae, x, k=1, per_example=True)
    total = evaluate.elbo(small_vae, x)["total"]
    stderr = per_example.std() / math.sqrt(len(per_example))
    assert abs(per_example.mean() + total) < 4 * stderr
    assert stderr < 0.1  # the check is a sharp one


def test_iw_bound_is_above_the_elbo_for_large_k(small_vae):
    x = _binary_data(200, 20)
    total = evaluate.elbo(small_vae, x)["total"]
    ll = evaluate.log_likelihood(small_vae, x, k=500)
    assert ll < 0
    assert ll > -total + 0.05


def test_matches_a_brute_force_loop(small_vae):
    """One example at a time, in plain NumPy: log-weights, then np.logaddexp.reduce."""
    x = _binary_data(5, 20, seed=3)
    k, seed = 50, 7
    est = evaluate.log_likelihood(small_vae, x, k=k, seed=seed, per_example=True)
    for i in range(len(x)):
        eps = np.random.default_rng([seed, i]).standard_normal((k, 3))
        mu, logvar = small_vae.encode(x[i : i + 1])
        var = np.exp(logvar)
        z = mu + np.sqrt(var) * eps
        logits = small_vae.decoder(z)
        log_px_z = np.sum(x[i] * logits - np.logaddexp(0.0, logits), axis=1)
        log_pz = np.sum(-0.5 * z**2 - 0.5 * np.log(2 * np.pi), axis=1)
        log_qz = np.sum(-0.5 * (z - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var), axis=1)
        expected = np.logaddexp.reduce(log_px_z + log_pz - log_qz) - np.log(k)
        assert est[i] == pytest.approx(expected, abs=1e-10)


def test_batch_size_does_not_change_the_estimate(small_vae):
    x = _binary_data(9, 20)
    ref = evaluate.log_likelihood(small_vae, x, k=20, batch_size=10_000, per_example=True)
    for batch_size in (1, 7, 20, 45):  # samples in chunks, one example, several examples
        est = evaluate.log_likelihood(small_vae, x, k=20, batch_size=batch_size, per_example=True)
        np.testing.assert_allclose(est, ref, rtol=0, atol=1e-12)
    e1 = evaluate.elbo(small_vae, x, batch_size=1)
    e2 = evaluate.elbo(small_vae, x, batch_size=4)
    assert e1 == pytest.approx(e2, abs=1e-12)


def test_seeded(small_vae):
    x = _binary_data(10, 20)
    a = evaluate.log_likelihood(small_vae, x, k=10, seed=1)
    assert a == evaluate.log_likelihood(small_vae, x, k=10, seed=1)
    assert a != evaluate.log_likelihood(small_vae, x, k=10, seed=2)
    assert evaluate.elbo(small_vae, x, seed=1) == evaluate.elbo(small_vae, x, seed=1)


def test_progress_bar_runs(small_vae, capsys):
    evaluate.log_likelihood(small_vae, _binary_data(3, 20), k=5, progress=True)


# -- the ELBO ------------------------------------------------------------------------------------
def test_elbo_uses_beta_one_and_matches_the_model_kl():
    x = _binary_data(30, 20)
    beta1 = mv.VAE(input_dim=20, hidden=[16], latent_dim=3, beta=1.0, seed=0, dtype="float64")
    beta4 = mv.VAE(input_dim=20, hidden=[16], latent_dim=3, beta=4.0, seed=0, dtype="float64")
    e1, e4 = evaluate.elbo(beta1, x), evaluate.elbo(beta4, x)
    assert e1 == pytest.approx(e4, abs=1e-12)
    assert e4["total"] == pytest.approx(e4["recon"] + e4["kl"], abs=1e-12)
    assert e4["kl"] == pytest.approx(beta4.loss(x).kl, abs=1e-12)  # the closed-form KL


def test_elbo_of_an_autoencoder_is_its_reconstruction_loss():
    ae = mv.Autoencoder(input_dim=20, hidden=[16], latent_dim=3, seed=0, dtype="float64")
    x = _binary_data(30, 20)
    e = evaluate.elbo(ae, x, batch_size=7)
    assert e["kl"] == 0.0
    assert e["total"] == e["recon"] == pytest.approx(ae.loss(x).recon, abs=1e-12)


# -- KL per dimension and active units -----------------------------------------------------------
def test_kl_per_dimension_sums_to_the_elbo_kl(small_vae):
    x = _binary_data(50, 20)
    kl = evaluate.kl_per_dimension(small_vae, x, batch_size=8)
    assert isinstance(kl, np.ndarray) and kl.shape == (3,)
    assert np.all(kl >= 0)
    assert kl.sum() == pytest.approx(evaluate.elbo(small_vae, x)["kl"], rel=1e-12)


def test_active_units_in_a_constructed_case():
    model = mv.VAE(input_dim=20, hidden=[16], latent_dim=5, seed=0, dtype="float64")
    model.mu_head.W.data[...] *= 4.0  # make the live dimensions clearly active
    model.mu_head.W.data[:, [1, 3]] = 0.0  # μ_1 and μ_3 no longer depend on x
    model.mu_head.b.data[[1, 3]] = 0.5
    x = _binary_data(200, 20)
    activity = evaluate.latent_activity(model, x, batch_size=64)
    assert activity.shape == (5,)
    assert activity[[1, 3]] == pytest.approx([0.0, 0.0], abs=1e-20)
    assert np.all(activity[[0, 2, 4]] > 0.01)
    assert evaluate.active_units(model, x) == 3
    assert evaluate.active_units(model, x, threshold=1e9) == 0
    means = mv.asnumpy(evaluate.latent_means(model, x))
    np.testing.assert_allclose(means.var(axis=0), activity, rtol=1e-12)


# -- bad input -----------------------------------------------------------------------------------
def test_bad_input_is_refused(small_vae):
    ae = mv.Autoencoder(input_dim=20, hidden=[16], latent_dim=3, seed=0)
    x = _binary_data(4, 20)
    with pytest.raises(TypeError, match="needs a VAE"):
        evaluate.log_likelihood(ae, x)
    with pytest.raises(TypeError, match="needs a VAE"):
        evaluate.kl_per_dimension(ae, x)
    with pytest.raises(
        ValueError, match=r"evaluate\.elbo: x has shape \(4, 10\); expected \(batch, 20\)"
    ):
        evaluate.elbo(small_vae, x[:, :10])
    bad = np.array(x, copy=True)
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"evaluate\.latent_means: x holds 1 NaN.*row 2"):
        evaluate.latent_means(small_vae, bad)
    with pytest.raises(ValueError, match="k must be"):
        evaluate.log_likelihood(small_vae, x, k=0)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate.elbo(small_vae, x, batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        evaluate.elbo(small_vae, x[:0])


# -- no NumPy-only call: the same numbers on array_api_strict --------------------------------------
def test_same_numbers_on_array_api_strict():
    x = _binary_data(12, 20)
    kwargs = dict(input_dim=20, hidden=[16], latent_dim=3, seed=0, dtype="float64")

    def everything():
        model = mv.VAE(**kwargs)
        return (
            evaluate.elbo(model, x, batch_size=5),
            evaluate.log_likelihood(model, x, k=30, batch_size=40, per_example=True),
            evaluate.kl_per_dimension(model, x),
            evaluate.latent_activity(model, x),
            evaluate.active_units(model, x, threshold=1e-3),
        )

    on_numpy = everything()
    mv.set_backend("array_api_strict")
    try:
        model = mv.VAE(**kwargs)
        assert type(model.parameters()[0].data).__module__.startswith("array_api_strict")
        on_strict = everything()
    finally:
        mv.set_backend("numpy")
    assert on_strict[0] == pytest.approx(on_numpy[0], abs=1e-12)
    for a, b in zip(on_strict[1:4], on_numpy[1:4]):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert on_strict[4] == on_numpy[4]
