"""The models: a plain autoencoder, a variational autoencoder, and a classifier head.

Both autoencoders have the same interface::

    terms = model.loss(x)          # forward pass; terms.total, terms.recon, terms.kl (floats)
    model.backward()               # fills p.grad for every p in model.parameters()
    z = model.encode(x)            # AE: the code z;  VAE: (μ, log σ²)
    log_px = model.log_px(z, x)    # log p(x | z) per example, in nats
    x_mean = model.decode(z)       # pixel means (probabilities for the Bernoulli decoder)
    x_new = model.sample(16, seed=0)
    x_hat = model.reconstruct(x)

``backward`` uses what the last ``loss`` cached: no other forward call (encode, ...) between.
Each public method checks its input in one line (:mod:`minivae.validate`); ``check=False`` skips
that, as ``fit`` and ``evaluate`` do batch after batch once they have checked the whole data set.
"""

from __future__ import annotations

import copy

from . import backend, losses, validate
from .nn import Clamp, Linear, Module, Sequential, mlp, sigmoid
from .nn import activation as make_activation
from .sampling import GaussianSampler

__all__ = ["LOGVAR_RANGE", "Autoencoder", "Classifier", "LossTerms", "VAE"]

#: The range the VAE clamps log σ² to. exp(20) ≈ 4.9e8 and exp(−30) ≈ 9.4e−14 are far from
#: float32's limits (≈ 3.4e38 and 1.2e−38), so σ², σ = exp(½ log σ²) and the KL stay finite
#: however large the encoder's raw output gets; a trained VAE's log σ² lies well inside.
LOGVAR_RANGE = (-30.0, 20.0)


class LossTerms:
    """The terms of a loss in nats per example, read as floats (``terms.total``, ``.recon``,
    ``.kl``). Kept as 0-d arrays (``terms.arrays``) until read, so a GPU waits only when asked."""

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
        args = (input_dim, hidden, latent_dim, likelihood, lam, activation, dtype)
        c = validate.model_config(self.kind, *args, beta=getattr(self, "beta", None))
        make_activation(activation)  # an unknown name raises here, listing the choices
        seed = validate.seed(seed, type(self).__name__)
        self.config, self.likelihood, self.lam = c, c["likelihood"], c["lam"]
        self.latent_dim = c["latent_dim"]
        self.build(c["input_dim"], c["hidden"], c["latent_dim"], activation, seed, c["dtype"])
        self.set_names()

    def build(self, d, hidden, latent, act, seed, dtype):
        """The layers: encoder d → … → latent, decoder latent → … → d (hidden in reverse)."""
        gen = backend.rng(seed, host=True)
        self.encoder = mlp([d, *hidden, latent], act, seed=gen, dtype=dtype)
        self.decoder = mlp([latent, *hidden[::-1], d], act, seed=gen, dtype=dtype)

    def _reconstruction(self, out, x):
        """−log p(x | z) from the decoder's raw output, and its gradient."""
        if self.likelihood == "bernoulli":
            return losses.bernoulli_nll(out, x)
        return losses.gaussian_nll(out, x, self.lam)

    def log_px(self, z, x, check=True):
        """log p(x | z) for each example, shape (batch,): the decoder's likelihood of x."""
        out = self.decoder(validate.codes(self, z, "log_px", check))
        x = validate.data(self, x, "log_px", check)
        if self.likelihood == "bernoulli":
            return losses.bernoulli_log_prob(out, x)  # out are the logits
        return losses.gaussian_log_prob(out, x, self.lam)  # out are the pixel means

    def decode(self, z, check=True):
        """Pixel means E[x | z]: σ(logits) for a Bernoulli decoder, the output for a Gaussian."""
        out = self.decoder(validate.codes(self, z, "decode", check))
        return sigmoid(out) if self.likelihood == "bernoulli" else out

    def encode(self, x, check=True):
        """The code z = encoder(x), shape (batch, latent_dim)."""
        return self.encoder(validate.data(self, x, "encode", check))

    def loss(self, x, eps=None, check=True):
        """Reconstruction loss of a batch; ``eps`` is accepted (and ignored) to match the VAE."""
        x = validate.data(self, x, "loss", check)
        recon, self._dout = self._reconstruction(self.decoder(self.encoder(x)), x)
        return LossTerms(total=recon, recon=recon, kl=0.0 * recon)

    def backward(self, input_grad: bool = False):
        """L = recon(decoder(encoder(x)))  ⇒  dL/dz = decoder.backward(dL/dout),
        dL/dx = encoder.backward(dL/dz). Returns dL/dx if ``input_grad`` (training needs no
        gradient for the data, so by default the first layer skips that product)."""
        dz = self.decoder.backward(self._dout)
        return self.encoder.backward(dz, input_grad=input_grad)

    def reconstruct(self, x, check=True):
        """decode(encode(x))."""
        x = validate.data(self, x, "reconstruct", check)
        return self.decode(self.encode(x, check=False), check=False)

    def sample(self, n: int, seed=0):
        """Decode n codes drawn from N(0, I): for a VAE, the prior the KL term pulled the codes
        towards. A plain autoencoder never asked its codes to look like N(0, I), so its samples
        are usually not images: see lesson 4."""
        where = f"{type(self).__name__}.sample"
        n, seed = validate.whole(n, where, "n"), validate.seed(seed, where)
        z = backend.Generator(seed, namespace=self.xp).normal((n, self.latent_dim), self.dtype)
        return self.decode(z, check=False)

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

    encoder:  h = f(x),  μ = W_μ·h + b_μ,  log σ² = clamp(W_σ·h + b_σ)  (q(z|x) = N(μ, diag σ²))
    sampler:  z = μ + σ·ε,  ε ~ N(0, I)                               (reparameterization)
    decoder:  logits (or means) = g(z)                               (p(x|z))
    loss:     total = recon + β·KL,  recon = −log p(x|z),  KL = KL(q(z|x) ‖ N(0, I))

    With β = 1 the total is the negative ELBO, an upper bound on −log p(x) in nats.

    The clamp keeps log σ² in :data:`LOGVAR_RANGE` = [−30, 20] so that σ² = exp(log σ²) never
    overflows; outside that range its gradient is 0 (the loss does not change there).

    ``regularizer`` gives the KL term and its gradients, ``(value, dmu, dlogvar)`` from ``(mu,
    logvar)``: ``losses.kl_standard_normal``, or ``losses.kl_lecture`` where lesson 6 sets it to
    compare (checkpoints do not record it).
    """

    kind = "vae"
    regularizer = staticmethod(losses.kl_standard_normal)

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
        self.beta = validate.number(beta, "VAE", "beta", zero_ok=True)  # recorded in config
        super().__init__(input_dim, hidden, latent_dim, likelihood, lam, activation, seed, dtype)

    def build(self, d, hidden, latent, act, seed, dtype):
        """The layers, and the sampler's own seed drawn after them from the same generator."""
        gen = backend.rng(seed, host=True)
        feat = hidden[-1] if hidden else d
        self.encoder = mlp([d, *hidden], act, final_activation=True, seed=gen, dtype=dtype)
        self.mu_head = Linear(feat, latent, seed=gen, dtype=dtype, gain=0.5**0.5)
        self.logvar_head = Linear(feat, latent, seed=gen, dtype=dtype, gain=0.5**0.5)
        self.logvar_clamp = Clamp(*LOGVAR_RANGE)
        self.decoder = mlp([latent, *hidden[::-1], d], act, seed=gen, dtype=dtype)
        noise_seed = None if seed is None else int(gen.host.integers(2**62))
        self.sampler = GaussianSampler(seed=noise_seed)

    def encode(self, x, check=True):
        """The approximate posterior q(z|x) = N(μ, diag σ²): returns (μ, log σ²)."""
        h = self.encoder(validate.data(self, x, "encode", check))
        return self.mu_head(h), self.logvar_clamp(self.logvar_head(h))

    def loss(self, x, eps=None, check=True):
        """total = recon + β·KL for a batch. ``eps`` (shape (batch, latent_dim)) fixes the noise;
        by default it is drawn from the model's seeded generator."""
        x = validate.data(self, x, "loss", check)
        ### BEGIN SOLUTION
        mu, logvar = self.encode(x, check=False)
        z = self.sampler(mu, logvar, validate.noise(self, eps, x, "loss", check))
        recon, dout = self._reconstruction(self.decoder(z), x)
        kl, dmu_kl, dlogvar_kl = self.regularizer(mu, logvar)
        self._cache = (dout, dmu_kl, dlogvar_kl)
        return LossTerms(total=recon + self.beta * kl, recon=recon, kl=kl)
        ### END SOLUTION

    def backward(self, input_grad: bool = False):
        """total = recon(g(z)) + β·KL(μ, log σ²),  z = μ + σ·ε,  (μ, log σ²) = heads(f(x))

        dL/dz       = decoder.backward(dL/dout)
        dL/dμ       = dL/dz · dz/dμ       + β · dKL/dμ          (two paths reach μ)
        dL/dlog σ²  = dL/dz · dz/dlog σ²  + β · dKL/dlog σ²     (and two reach log σ²)
        dL/dr       = clamp.backward(dL/dlog σ²)   (r: the head's output before the clamp;
                                                    0 where the clamp was active)
        dL/dh       = mu_head.backward(dL/dμ) + logvar_head.backward(dL/dr)
        dL/dx       = encoder.backward(dL/dh)
        Returns dL/dx if ``input_grad`` (by default the data's gradient is skipped).
        """
        ### BEGIN SOLUTION
        dout, dmu_kl, dlogvar_kl = self._cache
        dz = self.decoder.backward(dout)
        dmu_z, dlogvar_z = self.sampler.backward(dz)
        dmu = dmu_z + self.beta * dmu_kl
        dlogvar = dlogvar_z + self.beta * dlogvar_kl
        dr = self.logvar_clamp.backward(dlogvar)
        dh = self.mu_head.backward(dmu) + self.logvar_head.backward(dr)
        return self.encoder.backward(dh, input_grad=input_grad)
        ### END SOLUTION

    def reconstruct(self, x, check=True):
        """decode(μ): the reconstruction through the posterior mean (no noise)."""
        x = validate.data(self, x, "reconstruct", check)
        return self.decode(self.encode(x, check=False)[0], check=False)


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
        feature_dim = validate.whole(feature_dim, "Classifier", "feature_dim")
        self.n_classes = validate.whole(n_classes, "Classifier", "n_classes")
        self.head = Linear(feature_dim, self.n_classes, seed=seed, dtype=dtype, gain=0.5**0.5)
        self.set_names()

    @classmethod
    def from_model(cls, model: Autoencoder, n_classes: int = 10, seed=0):
        """A classifier whose features are a copy of ``model``'s encoder output (μ for a VAE)."""
        encoder = copy.deepcopy(model.encoder)
        if model.kind == "vae":
            encoder = Sequential(*encoder.layers, copy.deepcopy(model.mu_head))
        return cls(encoder, model.latent_dim, n_classes, seed=seed, dtype=model.dtype)

    @property
    def dtype(self) -> str:
        return backend.dtype_name(self.head.W.data.dtype)

    @property
    def xp(self):
        return backend.namespace(self.head.W.data)

    def _x(self, x, method, labels=None):
        """``x`` checked (and ``labels`` too, when given): see :func:`validate.classifier_input`."""
        return validate.classifier_input(self, x, labels, f"Classifier.{method}")

    def forward(self, x):
        """The class logits, shape (batch, n_classes)."""
        return self.head(self.encoder(x))

    def loss(self, x, labels):
        """Softmax cross-entropy of integer ``labels`` (shape (batch,)), averaged over the batch."""
        x, labels = self._x(x, "loss", labels)
        value, self._dlogits = losses.softmax_cross_entropy(self.forward(x), labels)
        return LossTerms(total=value)

    def backward(self):
        """dL/dfeatures = head.backward(dL/dlogits);  dL/dx = encoder.backward(dL/dfeatures)."""
        return self.encoder.backward(self.head.backward(self._dlogits))

    def predict(self, x):
        """The most likely class of each example."""
        return self.xp.argmax(self.forward(self._x(x, "predict")), axis=1)

    def accuracy(self, x, labels) -> float:
        """The fraction of examples whose predicted class is the label."""
        x, labels = self._x(x, "accuracy", labels)
        xp = self.xp
        ### BEGIN SOLUTION
        hits = xp.argmax(self.forward(x), axis=1) == xp.astype(labels, xp.int64)
        return float(xp.mean(xp.astype(hits, xp.float64)))
        ### END SOLUTION
