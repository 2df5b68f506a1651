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

Every public method checks its input first (see :mod:`minivae.validate`): shape, backend, dtype
and values, each failing with one sentence. Data of another float precision is cast to the
model's dtype (a float32 model computes in float32 whatever it is given); integer or boolean
images are converted to floats, and must already be in [0, 1] for a Bernoulli decoder. The
checks cost one read-back of two numbers per call; ``fit`` checks the whole data set once and then
trains through the unchecked ``_loss``, which is also the method to override to change the loss.
"""

from __future__ import annotations

import copy
import math

from . import backend, validate
from .losses import bernoulli_nll, gaussian_nll, kl_standard_normal, softmax_cross_entropy
from .nn import Clamp, Linear, Module, mlp, sigmoid
from .nn import activation as make_activation
from .sampling import GaussianSampler

__all__ = ["LOGVAR_RANGE", "Autoencoder", "Classifier", "LossTerms", "VAE"]

LIKELIHOODS = ("bernoulli", "gaussian")

#: The range the VAE clamps log σ² to. exp(20) ≈ 4.9e8 and exp(−30) ≈ 9.4e−14 are far from
#: float32's limits (≈ 3.4e38 and 1.2e−38), so σ², σ = exp(½ log σ²) and the KL stay finite
#: however large the encoder's raw output gets; a trained VAE's log σ² lies well inside.
LOGVAR_RANGE = (-30.0, 20.0)


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


def _size(name, n, where):
    """A layer size: a whole number ≥ 1 (True, 2.5, '20' and None are refused)."""
    ok = isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n)
    if not (ok and int(n) == n and n >= 1):
        raise ValueError(f"{where}: {name} must be a positive integer, got {n!r}.")
    return int(n)


def _number(name, value, where, zero_ok):
    """A finite number > 0 (or ≥ 0 when ``zero_ok``), as a float."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and (value >= 0 if zero_ok else value > 0)):
        bound = "zero or positive" if zero_ok else "positive"
        raise ValueError(f"{where}: {name} must be {bound} and finite, got {value!r}.")
    return float(value)


def _make_config(kind, input_dim, hidden, latent_dim, likelihood, lam, activation, dtype, **extra):
    """The checked settings of a model, as saved in checkpoints; a bad one is a ValueError."""
    where = {"ae": "Autoencoder", "vae": "VAE"}[kind]
    if isinstance(hidden, (int, float)) or not hasattr(hidden, "__iter__"):
        raise ValueError(
            f"{where}: hidden must be a list of layer sizes, e.g. hidden=[400], got {hidden!r}."
        )
    hidden = [_size("hidden size", h, where) for h in hidden]
    input_dim = _size("input_dim", input_dim, where)
    latent_dim = _size("latent_dim", latent_dim, where)
    if likelihood not in LIKELIHOODS:
        raise ValueError(
            f"{where}: likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}."
        )
    lam = _number("lam (λ = 1/(2σ²) of the Gaussian decoder)", lam, where, zero_ok=False)
    make_activation(activation)  # an unknown name raises here, listing the choices
    return dict(
        kind=kind,
        input_dim=input_dim,
        hidden=hidden,
        latent_dim=latent_dim,
        likelihood=likelihood,
        **extra,
        lam=lam,
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
        seed = validate.seed(seed, type(self).__name__)
        hidden = self.config["hidden"]
        gen = backend.rng(seed, host=True)
        dtype = self.config["dtype"]
        input_dim, latent_dim = self.config["input_dim"], self.config["latent_dim"]
        self.encoder = mlp([input_dim, *hidden, latent_dim], activation, seed=gen, dtype=dtype)
        self.decoder = mlp(
            [latent_dim, *hidden[::-1], input_dim], activation, seed=gen, dtype=dtype
        )
        self.likelihood, self.lam = likelihood, self.config["lam"]
        self.latent_dim = latent_dim
        self.set_names()

    # -- checking what comes in ------------------------------------------------------------------
    def _x(self, x, method, values=True):
        """The data ``x`` checked and on this model's backend and dtype (see validate.batch)."""
        return validate.for_model(self, x, f"{type(self).__name__}.{method}", values=values)

    def _z(self, z, method, name="z"):
        """Codes (or noise) of shape (batch, latent_dim), checked like the data but any real."""
        return validate.batch(
            z,
            xp=self.xp,
            dtype=self.dtype,
            width=self.latent_dim,
            where=f"{type(self).__name__}.{method}",
            name=name,
            what="latent_dim",
        )

    # -- pieces shared with the VAE ----------------------------------------------------------
    def _reconstruction(self, out, x):
        """−log p(x | z) from the decoder's raw output, and its gradient."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(out, x)
        return gaussian_nll(out, x, self.lam)

    def decode(self, z):
        """Pixel means E[x | z]: σ(logits) for a Bernoulli decoder, the output for a Gaussian."""
        return self._decode(self._z(z, "decode"))

    def _decode(self, z):
        out = self.decoder(z)
        return sigmoid(out) if self.likelihood == "bernoulli" else out

    # -- the autoencoder itself ------------------------------------------------------------
    def encode(self, x):
        """The code z = encoder(x), shape (batch, latent_dim)."""
        return self._encode(self._x(x, "encode"))

    def _encode(self, x):
        return self.encoder(x)

    def loss(self, x, eps=None):
        """Reconstruction loss of a batch; ``eps`` is accepted (and ignored) to match the VAE."""
        return self._loss(self._x(x, "loss"))

    def _loss(self, x, eps=None):
        """The loss of a batch already checked (what ``fit`` calls in its loop)."""
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
        return self._decode(self._encode(self._x(x, "reconstruct")))

    def sample(self, n: int, seed=0):
        """Decode n codes drawn from N(0, I). A plain autoencoder never asked its codes to look
        like N(0, I), so these are usually not images: see lesson 4."""
        where = f"{type(self).__name__}.sample"
        n = validate.positive_int(n, where, "n")
        seed = validate.seed(seed, where)
        z = backend.Generator(seed, namespace=self.xp).normal((n, self.latent_dim), self.dtype)
        return self._decode(z)

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

    ``regularizer`` is the function that gives the KL term and its gradients, ``(value, dmu,
    dlogvar)`` from ``(mu, logvar)``: :func:`~minivae.losses.kl_standard_normal` unless set on the
    model (lesson 6 sets :func:`~minivae.losses.kl_lecture` to compare; checkpoints do not record
    it).
    """

    kind = "vae"
    regularizer = staticmethod(kl_standard_normal)

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
        beta = _number("beta", beta, "VAE", zero_ok=True)
        self.config = _make_config(
            self.kind,
            input_dim,
            hidden,
            latent_dim,
            likelihood,
            lam,
            activation,
            dtype,
            beta=beta,
        )
        seed = validate.seed(seed, "VAE")
        hidden = self.config["hidden"]
        gen = backend.rng(seed, host=True)
        dtype = self.config["dtype"]
        input_dim, latent_dim = self.config["input_dim"], self.config["latent_dim"]
        feat = hidden[-1] if hidden else input_dim
        self.encoder = mlp(
            [input_dim, *hidden], activation, final_activation=True, seed=gen, dtype=dtype
        )
        self.mu_head = Linear(feat, latent_dim, seed=gen, dtype=dtype, gain=0.5**0.5)
        self.logvar_head = Linear(feat, latent_dim, seed=gen, dtype=dtype, gain=0.5**0.5)
        self.logvar_clamp = Clamp(*LOGVAR_RANGE)
        self.decoder = mlp(
            [latent_dim, *hidden[::-1], input_dim], activation, seed=gen, dtype=dtype
        )
        noise_seed = None if seed is None else int(gen.host.integers(2**62))
        self.sampler = GaussianSampler(seed=noise_seed)
        self.likelihood, self.lam, self.beta = likelihood, self.config["lam"], beta
        self.latent_dim = latent_dim
        self.set_names()

    def _encode(self, x):
        """The approximate posterior q(z|x) = N(μ, diag σ²): returns (μ, log σ²)."""
        h = self.encoder(x)
        return self.mu_head(h), self.logvar_clamp(self.logvar_head(h))

    def encode(self, x):
        """The approximate posterior q(z|x) = N(μ, diag σ²): returns (μ, log σ²)."""
        return self._encode(self._x(x, "encode"))

    def loss(self, x, eps=None):
        """total = recon + β·KL for a batch. ``eps`` (shape (batch, latent_dim)) fixes the noise;
        by default it is drawn from the model's seeded generator."""
        x = self._x(x, "loss")
        if eps is not None:
            eps = self._z(eps, "loss", name="eps")
            if eps.shape[0] != x.shape[0]:
                raise validate.InputError(
                    f"VAE.loss: eps has shape {tuple(eps.shape)}; expected "
                    f"({x.shape[0]}, {self.latent_dim}), one row of noise per row of x."
                )
        return self._loss(x, eps)

    def _loss(self, x, eps=None):
        """The loss of a batch already checked (what ``fit`` calls in its loop)."""
        mu, logvar = self._encode(x)
        z = self.sampler(mu, logvar, eps)
        out = self.decoder(z)
        recon, dout = self._reconstruction(out, x)
        kl, dmu_kl, dlogvar_kl = self.regularizer(mu, logvar)
        self._cache = (dout, dmu_kl, dlogvar_kl)
        return LossTerms(total=recon + self.beta * kl, recon=recon, kl=kl)

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
        dout, dmu_kl, dlogvar_kl = self._cache
        dz = self.decoder.backward(dout)
        dmu_z, dlogvar_z = self.sampler.backward(dz)
        dmu = dmu_z + self.beta * dmu_kl
        dlogvar = dlogvar_z + self.beta * dlogvar_kl
        dr = self.logvar_clamp.backward(dlogvar)
        dh = self.mu_head.backward(dmu) + self.logvar_head.backward(dr)
        return self.encoder.backward(dh, input_grad=input_grad)

    def reconstruct(self, x):
        """decode(μ): the reconstruction through the posterior mean (no noise)."""
        mu, _ = self._encode(self._x(x, "reconstruct"))
        return self._decode(mu)

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
        feature_dim = _size("feature_dim", feature_dim, "Classifier")
        n_classes = _size("n_classes", n_classes, "Classifier")
        self.head = Linear(feature_dim, n_classes, seed=seed, dtype=dtype, gain=0.5**0.5)
        self.n_classes = n_classes
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

    @property
    def dtype(self) -> str:
        return backend.dtype_name(self.head.W.data.dtype)

    @property
    def xp(self):
        return backend.namespace(self.head.W.data)

    def _x(self, x, method):
        first = next(m for _, m in self.named_modules() if isinstance(m, Linear))
        return validate.batch(
            x, xp=self.xp, dtype=self.dtype, width=first.in_dim, where=f"Classifier.{method}"
        )

    def _labels(self, labels, n: int, method: str):
        """Integer class labels, shape (n,), each in 0 … n_classes − 1."""
        where = f"Classifier.{method}"
        xp = self.xp
        if not hasattr(labels, "shape"):
            labels = xp.asarray(labels)
        ns = backend.namespace(labels)
        if not ns.isdtype(labels.dtype, "integral"):
            raise TypeError(f"{where}: labels have dtype {labels.dtype}; expected integers.")
        if tuple(labels.shape) != (n,):
            raise validate.InputError(
                f"{where}: labels have shape {tuple(labels.shape)}; expected ({n},), one class "
                "number per row of x."
            )
        labels = labels if ns is xp else backend.asarray(labels, namespace=xp)
        lo, hi = int(xp.min(labels)), int(xp.max(labels))
        if lo < 0 or hi >= self.n_classes:
            raise validate.InputError(
                f"{where}: labels run from {lo} to {hi}; expected class numbers 0 to "
                f"{self.n_classes - 1} (the classifier has n_classes={self.n_classes})."
            )
        return labels

    def forward(self, x):
        """The class logits, shape (batch, n_classes)."""
        return self.head(self.encoder(x))

    def loss(self, x, labels):
        """Softmax cross-entropy of integer ``labels`` (shape (batch,)), averaged over the batch."""
        x = self._x(x, "loss")
        labels = self._labels(labels, x.shape[0], "loss")
        value, self._dlogits = softmax_cross_entropy(self.forward(x), labels)
        return LossTerms(total=value)

    def backward(self):
        """dL/dfeatures = head.backward(dL/dlogits);  dL/dx = encoder.backward(dL/dfeatures)."""
        return self.encoder.backward(self.head.backward(self._dlogits))

    def predict(self, x):
        """The most likely class of each example."""
        x = self._x(x, "predict")
        return self.xp.argmax(self.forward(x), axis=1)

    def accuracy(self, x, labels) -> float:
        """The fraction of examples whose predicted class is the label."""
        x = self._x(x, "accuracy")
        labels = self._labels(labels, x.shape[0], "accuracy")
        xp = self.xp
        hits = xp.argmax(self.forward(x), axis=1) == xp.astype(labels, xp.int64)
        return float(xp.mean(xp.astype(hits, xp.float64)))
