"""The models: a plain autoencoder, a variational autoencoder, and a classifier head.

Both autoencoders have the same interface::

    terms = model.loss(x)          # forward pass; terms.total, terms.recon, terms.kl (floats)
    model.backward()               # fills p.grad for every p in model.parameters()
    z = model.encode(x)            # AE: the code z;  VAE: (μ, log σ²)
    x_mean = model.decode(z)       # pixel means (probabilities for the Bernoulli decoder)
    x_new = model.sample(16, seed=0)
    x_hat = model.reconstruct(x)

``backward`` uses what the last ``loss`` call cached; call ``loss`` then ``backward``, with no
other forward call (encode, decode, ...) in between.
"""

from __future__ import annotations

import copy

from . import backend
from .losses import bernoulli_nll, gaussian_nll, kl_standard_normal, softmax_cross_entropy
from .nn import Linear, Module, mlp, sigmoid
from .nn import activation as make_activation
from .sampling import GaussianSampler

__all__ = ["Autoencoder", "Classifier", "LossTerms", "VAE"]

LIKELIHOODS = ("bernoulli", "gaussian")


class LossTerms:
    """The terms of a loss, in nats per example (summed over features, averaged over the batch).

    Read them as Python floats (``terms.total``, ``terms.recon``, ``terms.kl``). They are kept as
    0-d arrays until read, so a training loop on the GPU only waits for the device when it asks
    for a number; ``terms.arrays`` gives the arrays themselves.
    """

    def __init__(self, **arrays):
        self.arrays = arrays

    def __getattr__(self, name):
        try:
            return float(self.__dict__["arrays"][name])
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.arrays.items()}

    def __repr__(self):
        inner = ", ".join(f"{k}={v:.4f}" for k, v in self.as_dict().items())
        return f"LossTerms({inner})"


def _make_config(kind, input_dim, hidden, latent_dim, likelihood, lam, activation, dtype, **extra):
    """The checked settings of a model, as saved in checkpoints; a bad one is a ValueError."""
    hidden = [int(h) for h in hidden]
    for name, n in [("input_dim", input_dim), ("latent_dim", latent_dim)] + [
        ("hidden size", h) for h in hidden
    ]:
        if int(n) != n or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}.")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}.")
    if not lam > 0:
        raise ValueError(f"lam (λ = 1/(2σ²) of the Gaussian decoder) must be positive, got {lam}.")
    make_activation(activation)  # an unknown name raises here, listing the choices
    return dict(
        kind=kind,
        input_dim=int(input_dim),
        hidden=hidden,
        latent_dim=int(latent_dim),
        likelihood=likelihood,
        **extra,
        lam=float(lam),
        activation=activation,
        dtype=backend.dtype_name(dtype),
    )


class Autoencoder(Module):
    """A plain autoencoder: x → encoder → z (the bottleneck) → decoder → x̂.

    The loss is the reconstruction term alone: −log p(x | z), Bernoulli from logits for images in
    [0, 1] (``likelihood="bernoulli"``) or Gaussian with weight λ (``likelihood="gaussian"``).
    """

    kind = "ae"

    def __init__(
        self,
        input_dim=784,
        hidden=(400,),
        latent_dim=20,
        likelihood="bernoulli",
        lam=0.5,
        activation="relu",
        seed=0,
        dtype=None,
    ):
        self.config = _make_config(
            self.kind, input_dim, hidden, latent_dim, likelihood, lam, activation, dtype
        )
        hidden = self.config["hidden"]
        gen = backend.rng(seed, host=True)
        dtype = self.config["dtype"]
        self.encoder = mlp([input_dim, *hidden, latent_dim], activation, seed=gen, dtype=dtype)
        self.decoder = mlp(
            [latent_dim, *hidden[::-1], input_dim], activation, seed=gen, dtype=dtype
        )
        self.likelihood, self.lam = likelihood, float(lam)
        self.latent_dim = int(latent_dim)
        self.set_names()

    # -- pieces shared with the VAE ----------------------------------------------------------
    def _reconstruction(self, out, x):
        """−log p(x | z) from the decoder's raw output, and its gradient."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(out, x)
        return gaussian_nll(out, x, self.lam)

    def decode(self, z):
        """Pixel means E[x | z]: σ(logits) for a Bernoulli decoder, the output for a Gaussian."""
        out = self.decoder(z)
        return sigmoid(out) if self.likelihood == "bernoulli" else out

    # -- the autoencoder itself ------------------------------------------------------------
    def encode(self, x):
        """The code z = encoder(x), shape (batch, latent_dim)."""
        return self.encoder(x)

    def loss(self, x, eps=None):
        """Reconstruction loss of a batch; ``eps`` is accepted (and ignored) to match the VAE."""
        z = self.encoder(x)
        out = self.decoder(z)
        recon, self._dout = self._reconstruction(out, x)
        return LossTerms(total=recon, recon=recon, kl=0.0 * recon)

    def backward(self, input_grad: bool = False):
        """L = recon(decoder(encoder(x)))  ⇒  dL/dz = decoder.backward(dL/dout),
        dL/dx = encoder.backward(dL/dz). Returns dL/dx if ``input_grad`` (training needs no
        gradient for the data, so by default the first layer skips that product)."""
        dz = self.decoder.backward(self._dout)
        return self.encoder.backward(dz, input_grad=input_grad)

    def reconstruct(self, x):
        """decode(encode(x))."""
        return self.decode(self.encode(x))

    def sample(self, n: int, seed=0):
        """Decode n codes drawn from N(0, I). A plain autoencoder never asked its codes to look
        like N(0, I), so these are usually not images: see lesson 4."""
        z = backend.Generator(seed, namespace=self.xp).normal((n, self.latent_dim), self.dtype)
        return self.decode(z)

    @property
    def dtype(self) -> str:
        return self.config["dtype"]

    @property
    def xp(self):
        """The array namespace this model's parameters live in (NumPy, CuPy, ...)."""
        return backend.namespace(self.parameters()[0].data)

    def asarray(self, x):
        """``x`` as an array of this model's backend and dtype (no copy if it already is one)."""
        return backend.asarray(x, dtype=self.dtype, namespace=self.xp)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "kind")
        return f"{type(self).__name__}({args})"


class VAE(Autoencoder):
    """A variational autoencoder (Kingma & Welling, 2014).

    encoder:  h = f(x),  μ = W_μ·h + b_μ,  log σ² = W_σ·h + b_σ      (q(z|x) = N(μ, diag σ²))
    sampler:  z = μ + σ·ε,  ε ~ N(0, I)                               (reparameterization)
    decoder:  logits (or means) = g(z)                               (p(x|z))
    loss:     total = recon + β·KL,  recon = −log p(x|z),  KL = KL(q(z|x) ‖ N(0, I))

    With β = 1 the total is the negative ELBO, an upper bound on −log p(x) in nats.
    """

    kind = "vae"

    def __init__(
        self,
        input_dim=784,
        hidden=(400,),
        latent_dim=20,
        likelihood="bernoulli",
        beta=1.0,
        lam=0.5,
        activation="relu",
        seed=0,
        dtype=None,
    ):
        if not beta >= 0:
            raise ValueError(f"beta must be zero or positive, got {beta}.")
        self.config = _make_config(
            self.kind,
            input_dim,
            hidden,
            latent_dim,
            likelihood,
            lam,
            activation,
            dtype,
            beta=float(beta),
        )
        hidden = self.config["hidden"]
        gen = backend.rng(seed, host=True)
        dtype = self.config["dtype"]
        feat = hidden[-1] if hidden else input_dim
        self.encoder = mlp(
            [input_dim, *hidden], activation, final_activation=True, seed=gen, dtype=dtype
        )
        self.mu_head = Linear(feat, latent_dim, seed=gen, dtype=dtype, gain=0.5**0.5)
        self.logvar_head = Linear(feat, latent_dim, seed=gen, dtype=dtype, gain=0.5**0.5)
        self.decoder = mlp(
            [latent_dim, *hidden[::-1], input_dim], activation, seed=gen, dtype=dtype
        )
        noise_seed = None if seed is None else int(gen.host.integers(2**62))
        self.sampler = GaussianSampler(seed=noise_seed)
        self.likelihood, self.lam, self.beta = likelihood, float(lam), float(beta)
        self.latent_dim = int(latent_dim)
        self.set_names()

    def encode(self, x):
        """The approximate posterior q(z|x) = N(μ, diag σ²): returns (μ, log σ²)."""
        h = self.encoder(x)
        return self.mu_head(h), self.logvar_head(h)

    def loss(self, x, eps=None):
        """total = recon + β·KL for a batch. ``eps`` (shape (batch, latent_dim)) fixes the noise;
        by default it is drawn from the model's seeded generator."""
        h = self.encoder(x)
        mu, logvar = self.mu_head(h), self.logvar_head(h)
        z = self.sampler(mu, logvar, eps)
        out = self.decoder(z)
        recon, dout = self._reconstruction(out, x)
        kl, dmu_kl, dlogvar_kl = kl_standard_normal(mu, logvar)
        self._cache = (dout, dmu_kl, dlogvar_kl)
        return LossTerms(total=recon + self.beta * kl, recon=recon, kl=kl)

    def backward(self, input_grad: bool = False):
        """total = recon(g(z)) + β·KL(μ, log σ²),  z = μ + σ·ε,  (μ, log σ²) = heads(f(x))

        dL/dz       = decoder.backward(dL/dout)
        dL/dμ       = dL/dz · dz/dμ       + β · dKL/dμ          (two paths reach μ)
        dL/dlog σ²  = dL/dz · dz/dlog σ²  + β · dKL/dlog σ²     (and two reach log σ²)
        dL/dh       = mu_head.backward(dL/dμ) + logvar_head.backward(dL/dlog σ²)
        dL/dx       = encoder.backward(dL/dh)
        Returns dL/dx if ``input_grad`` (by default the data's gradient is skipped).
        """
        dout, dmu_kl, dlogvar_kl = self._cache
        dz = self.decoder.backward(dout)
        dmu_z, dlogvar_z = self.sampler.backward(dz)
        dmu = dmu_z + self.beta * dmu_kl
        dlogvar = dlogvar_z + self.beta * dlogvar_kl
        dh = self.mu_head.backward(dmu) + self.logvar_head.backward(dlogvar)
        return self.encoder.backward(dh, input_grad=input_grad)

    def reconstruct(self, x):
        """decode(μ): the reconstruction through the posterior mean (no noise)."""
        mu, _ = self.encode(x)
        return self.decode(mu)

    def sample(self, n: int, seed=0):
        """New data: z ~ N(0, I), the prior the KL term pulled the codes towards, then decode."""
        return super().sample(n, seed)


class Classifier(Module):
    """A softmax classifier on top of an encoder:  logits = W·features(x) + b.

    ``Classifier.from_model(model, n_classes)`` copies a (pretrained) autoencoder's encoder — for a
    VAE, the encoder and its μ head, so the features are the posterior means — and puts a fresh
    Linear head on it; training then fine-tunes the copy and leaves the autoencoder as it was.
    """

    kind = "classifier"

    def __init__(self, encoder: Module, feature_dim: int, n_classes: int = 10, seed=0, dtype=None):
        self.encoder = encoder
        dtype = backend.dtype_name(dtype or encoder.parameters()[0].data.dtype)
        self.head = Linear(feature_dim, n_classes, seed=seed, dtype=dtype, gain=0.5**0.5)
        self.n_classes = int(n_classes)
        self.set_names()

    @classmethod
    def from_model(cls, model: Autoencoder, n_classes: int = 10, seed=0):
        """A classifier whose features are a copy of ``model``'s encoder output (μ for a VAE)."""
        from .nn import Sequential

        if isinstance(model, VAE):
            encoder = Sequential(*copy.deepcopy(model.encoder.layers), copy.deepcopy(model.mu_head))
        else:
            encoder = copy.deepcopy(model.encoder)
        return cls(encoder, model.latent_dim, n_classes, seed=seed, dtype=model.dtype)

    def forward(self, x):
        """The class logits, shape (batch, n_classes)."""
        return self.head(self.encoder(x))

    def loss(self, x, labels):
        """Softmax cross-entropy of integer ``labels`` (shape (batch,)), averaged over the batch."""
        value, self._dlogits = softmax_cross_entropy(self.forward(x), labels)
        return LossTerms(total=value)

    def backward(self):
        """dL/dfeatures = head.backward(dL/dlogits);  dL/dx = encoder.backward(dL/dfeatures)."""
        return self.encoder.backward(self.head.backward(self._dlogits))

    def predict(self, x):
        """The most likely class of each example."""
        return backend.namespace(x).argmax(self.forward(x), axis=1)

    def accuracy(self, x, labels) -> float:
        """The fraction of examples whose predicted class is the label."""
        xp = backend.namespace(x)
        hits = self.predict(x) == xp.astype(labels, xp.int64)
        return float(xp.mean(xp.astype(hits, xp.float64)))
