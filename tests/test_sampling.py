import numpy as np
import pytest
from conftest import assert_on_backend

import minivae as mv
from minivae.gradcheck import check_function
from minivae.sampling import GaussianSampler, reparameterize

rng = np.random.default_rng(0)
MU, LOGVAR, EPS, DZ = (rng.standard_normal((4, 3)) for _ in range(4))


def test_forward_is_mu_plus_sigma_eps(to_backend):
    sampler = GaussianSampler()
    z = sampler(to_backend(MU), to_backend(LOGVAR), eps=to_backend(EPS))
    assert_on_backend(z)
    np.testing.assert_allclose(mv.asnumpy(z), MU + np.exp(0.5 * LOGVAR) * EPS, rtol=1e-14)
    np.testing.assert_allclose(
        mv.asnumpy(reparameterize(to_backend(MU), to_backend(LOGVAR), to_backend(EPS))),
        mv.asnumpy(z),
    )


def test_backward_with_fixed_noise(to_backend):
    mu, logvar, eps, dz = (to_backend(a) for a in (MU, LOGVAR, EPS, DZ))
    sampler = GaussianSampler()
    sampler(mu, logvar, eps=eps)
    dmu, dlogvar = sampler.backward(dz)

    def f(m, v):
        return mv.xp.sum(GaussianSampler()(m, v, eps=eps) * dz)

    assert check_function(f, [mu, logvar], [dmu, dlogvar]) < 1e-7


def test_noise_is_drawn_once_and_cached(to_backend):
    sampler = GaussianSampler(seed=3)
    mu, logvar = to_backend(MU), to_backend(LOGVAR)
    z = sampler(mu, logvar)
    eps, sigma = sampler.cache
    np.testing.assert_allclose(mv.asnumpy(z), mv.asnumpy(mu + sigma * eps))
    # backward uses the cached noise: dL/dlogvar = dz·ε·½σ for that very ε
    _, dlogvar = sampler.backward(to_backend(np.ones_like(MU)))
    np.testing.assert_allclose(mv.asnumpy(dlogvar), mv.asnumpy(eps * 0.5 * sigma))
    # a fresh draw differs, the same seed repeats
    assert not np.allclose(mv.asnumpy(sampler(mu, logvar)), mv.asnumpy(z))
    np.testing.assert_array_equal(mv.asnumpy(GaussianSampler(seed=3)(mu, logvar)), mv.asnumpy(z))


def test_samples_have_the_right_moments():
    sampler = GaussianSampler(seed=0)
    mu = np.full((100_000, 2), [1.0, -2.0])
    logvar = np.full((100_000, 2), np.log([0.25, 4.0]))
    z = sampler(mu, logvar)
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.01)


def test_eps_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"eps must have the shape of mu \(4, 3\), got \(4, 2\)"):
        GaussianSampler()(MU, LOGVAR, eps=np.zeros((4, 2)))
