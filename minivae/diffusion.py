"""Latent diffusion: a denoising diffusion model (DDPM) trained on the codes of a VAE.

A VAE's prior N(0, I) and the codes its encoder actually uses (the *aggregate posterior*) are
not the same distribution: decoding z ~ N(0, I) lands in "holes" between the codes of real images
and gives smudges. Latent diffusion (Rombach et al., 2022) keeps the VAE's decoder and learns a
better prior for its codes with a diffusion model (Ho et al., 2020), here on the posterior means
μ(x) of a data set::

    model = mv.diffusion.LatentDiffusion(latent_dim=vae.latent_dim, seed=0)
    mu, _ = vae.encode(x_train)
    mv.diffusion.train(model, mu, steps=4000, seed=0)      # Adam on L_simple
    z = model.sample(64, seed=0)                             # DDPM, all T steps
    z = model.sample(64, seed=0, sampler="ddim", steps=50)   # DDIM, 50 steps, deterministic
    images = vae.decode(z)

The pieces, each in a function of its own below:

forward process   q(z_t | z_0) = N(√ᾱ_t·z_0, (1 − ᾱ_t)·I),  ᾱ_t = Π_{s≤t} (1 − β_s)
                  so  z_t = √ᾱ_t·z_0 + √(1 − ᾱ_t)·ε  with ε ~ N(0, I), in one step for any t
denoiser          ε̂ = ε_θ(z_t, t): an MLP on [z_t, sinusoidal features of t]
loss              L_simple = (1/B) Σ_i ‖ε_i − ε_θ(z_t,i, t_i)‖²   (summed over latent dimensions,
                  averaged over the batch, like every loss in minivae)
DDPM sampling     z_T ~ N(0, I), then  z_{t−1} = (z_t − β_t/√(1 − ᾱ_t)·ε̂) / √α_t + σ_t·ξ
DDIM sampling     the same trained ε_θ, a deterministic update on a subsequence of the steps

Steps are numbered as in the papers: t = 1 … T, and t = 0 is the data itself (ᾱ_0 = 1). The
schedule is a table of T + 1 numbers kept on the host (like the shuffling order in ``fit``); the
codes and the network live on the active backend.

Codes are standardized before diffusion (each latent dimension to mean 0, standard deviation 1,
with the statistics of the training codes, stored in the model) and samples are returned in the
VAE's units: the forward process assumes data of about unit scale, as images in [−1, 1] are.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from . import backend, checkpoint, validate
from .models import LossTerms
from .nn import Module, mlp
from .optim import Adam

__all__ = [
    "LatentDiffusion",
    "Schedule",
    "load",
    "save",
    "time_features",
    "train",
]

SCHEDULES = ("linear", "cosine")
KIND = "latent-diffusion"


# -- the variance schedule and the forward process ------------------------------------------------
class Schedule:
    """The noise levels β_1 … β_T and what follows from them, as NumPy float64 tables of length
    T + 1 indexed by the step t (entry 0 is the clean data: β_0 = 0, ᾱ_0 = 1).

    ``"linear"`` (Ho et al., 2020): β_t rises linearly from 10⁻⁴ to 0.02 over T = 1000 steps;
    for another T both ends are scaled by 1000 / T so that the total amount of noise is alike.

    ``"cosine"`` (Nichol & Dhariwal, 2021): ᾱ_t = f(t) / f(0) with
    f(t) = cos²((t/T + s)/(1 + s)·π/2) and s = 0.008, so that ᾱ falls slowly at both ends;
    β_t = 1 − ᾱ_t/ᾱ_{t−1}, capped at 0.999 (the last steps would otherwise reach β = 1, and
    1/√α_t would be infinite).

    alpha[t]          α_t = 1 − β_t
    alpha_bar[t]      ᾱ_t = α_1·α_2·…·α_t           (the signal left in z_t)
    posterior_var[t]  β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t, the variance of q(z_{t−1} | z_t, z_0)
    """

    def __init__(self, name: str = "linear", steps: int = 1000):
        if name not in SCHEDULES:
            raise validate.SettingError(f"Unknown schedule {name!r}: choose 'linear' or 'cosine'.")
        T = validate.whole(steps, "Schedule", "steps (T)")
        t = np.arange(T + 1, dtype=np.float64)
        if name == "linear":
            scale = 1000.0 / T
            beta = np.linspace(scale * 1e-4, scale * 0.02, T)
        else:
            s = 0.008
            f = np.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
            beta = 1.0 - f[1:] / f[:-1]
        beta = np.clip(beta, 0.0, 0.999)
        self.name, self.T = name, T
        self.beta = np.concatenate([[0.0], beta])
        self.alpha = 1.0 - self.beta
        self.alpha_bar = np.cumprod(self.alpha)
        prev = np.concatenate([[1.0], self.alpha_bar[:-1]])  # ᾱ_{t−1}
        self.posterior_var = np.zeros(T + 1)
        self.posterior_var[1:] = (1.0 - prev[1:]) / (1.0 - self.alpha_bar[1:]) * self.beta[1:]

    def __repr__(self):
        return f"Schedule({self.name!r}, steps={self.T})"

    def coefficient(self, table, t, like):
        """``table[t]`` for an array of steps ``t`` (B,), as a column (B, 1) on the backend and
        dtype of the array ``like``: the per-example numbers that multiply z_t and ε."""
        xp = backend.namespace(like)
        values = np.asarray(table)[np.asarray(t)].reshape(-1, 1)
        return xp.asarray(values, dtype=like.dtype)

    def q_mean_var(self, z0, t):
        """The closed form of the forward process: q(z_t | z_0) = N(√ᾱ_t·z_0, (1 − ᾱ_t)·I).

        Why: z_t = √α_t·z_{t−1} + √β_t·ξ_t adds independent Gaussian noise at every step, and a
        sum of independent Gaussians is Gaussian; the signal is scaled by √α_1·…·√α_t = √ᾱ_t and
        the noise variances add up to 1 − ᾱ_t (by induction: α_t·(1 − ᾱ_{t−1}) + β_t = 1 − ᾱ_t).
        Returns ``(mean, variance)``, shapes (B, d) and (B, 1).
        """
        ### BEGIN SOLUTION
        a = self.coefficient(self.alpha_bar, t, z0)
        return backend.namespace(z0).sqrt(a) * z0, 1.0 - a
        ### END SOLUTION

    def q_sample(self, z0, t, eps):
        """z_t = √ᾱ_t·z_0 + √(1 − ᾱ_t)·ε: a draw from q(z_t | z_0), made from the noise ε."""
        xp = backend.namespace(z0)
        ### BEGIN SOLUTION
        a = self.coefficient(self.alpha_bar, t, z0)
        return xp.sqrt(a) * z0 + xp.sqrt(1.0 - a) * eps
        ### END SOLUTION


def time_features(t, n: int, like):
    """Sinusoidal features of the step t (Vaswani et al., 2017; Ho et al., 2020), shape (B, n).

    For k = 0 … n/2 − 1 the frequency is ω_k = 10000^(−2k/n), and the features of t are
    [sin(ω_0·t), …, sin(ω_{n/2−1}·t), cos(ω_0·t), …, cos(ω_{n/2−1}·t)]: fast waves tell nearby
    steps apart, slow ones say roughly where in 1 … T the step lies. They are fixed (no weights),
    so no gradient flows into them. ``like`` gives the backend and dtype.
    """
    xp = backend.namespace(like)
    half = n // 2
    omega = np.exp(-math.log(10000.0) * np.arange(half) * 2.0 / n)
    angles = np.asarray(t, dtype=np.float64).reshape(-1, 1) * omega.reshape(1, -1)
    feats = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    return xp.asarray(feats, dtype=like.dtype)


# -- the denoiser ----------------------------------------------------------------------------------
class LatentDiffusion(Module):
    """A diffusion prior for d-dimensional codes: a schedule and an ε-prediction MLP.

    ε_θ(z_t, t) = MLP([z_t, features(t)]), with ``hidden`` layer sizes and a Linear output of
    width d. ``steps`` is T; ``schedule`` is 'linear' or 'cosine'. The model also keeps the mean
    and standard deviation of the training codes (``data_mean``, ``data_std``; set by
    :func:`train` or :meth:`set_data_scale`), used to standardize codes and undo it on samples.

    loss(z0, t=None, eps=None)   L_simple for a batch of codes (draws t and ε unless given)
    backward()                   fills p.grad of every weight from the last loss
    predict_noise(z_t, t)        ε̂, in the standardized space
    sample(n, seed, sampler, steps, eta)   new codes, in the VAE's units
    """

    kind = KIND

    def __init__(
        self,
        latent_dim: int,
        hidden=(256, 256, 256),
        steps: int = 1000,
        schedule: str = "linear",
        time_dim: int = 32,
        activation: str = "relu",
        seed=0,
        dtype=None,
    ):
        where = "LatentDiffusion"
        latent_dim = validate.whole(latent_dim, where, "latent_dim")
        if isinstance(hidden, (int, float)) or not hasattr(hidden, "__iter__"):
            raise validate.SettingError(
                f"{where}: hidden must be a list of layer sizes, got {hidden!r}."
            )
        hidden = [validate.whole(h, where, "hidden size") for h in hidden]
        time_dim = validate.whole(time_dim, where, "time_dim")
        if time_dim % 2:
            raise validate.SettingError(
                f"{where}: time_dim must be even (sines and cosines), got {time_dim}."
            )
        seed = validate.seed(seed, where)
        self.schedule = Schedule(schedule, steps)
        self.config = dict(
            kind=KIND,
            latent_dim=latent_dim,
            hidden=hidden,
            steps=self.schedule.T,
            schedule=schedule,
            time_dim=time_dim,
            activation=activation,
            dtype=backend.dtype_name(dtype),
        )
        gen = backend.rng(seed, host=True)
        dtype = self.config["dtype"]
        self.net = mlp(
            [latent_dim + time_dim, *hidden, latent_dim], activation, seed=gen, dtype=dtype
        )
        self.latent_dim, self.time_dim = latent_dim, time_dim
        xp = self.xp
        self.data_mean = xp.zeros((latent_dim,), dtype=backend.get_dtype(dtype, xp))
        self.data_std = xp.ones((latent_dim,), dtype=backend.get_dtype(dtype, xp))
        self.gen = backend.Generator(None if seed is None else seed + 1, namespace=xp)
        self.set_names()

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "kind")
        return f"LatentDiffusion({args})"

    @property
    def dtype(self) -> str:
        return self.config["dtype"]

    @property
    def xp(self):
        """The array namespace of the weights (NumPy, CuPy, ...)."""
        return backend.namespace(self.net.layers[0].W.data)

    def _z(self, z, where, name="z"):
        return validate.batch(
            z,
            xp=self.xp,
            dtype=self.dtype,
            width=self.latent_dim,
            where=f"LatentDiffusion.{where}",
            name=name,
            what="latent_dim",
        )

    def _steps(self, t, n, where):
        """Steps as a NumPy int array of shape (n,), each in 1 … T."""
        t = np.asarray(backend.asnumpy(t) if hasattr(t, "shape") else t)
        if t.ndim == 0:
            t = np.full(n, t)
        if t.shape != (n,) or t.dtype.kind not in "iu":
            raise validate.InputError(
                f"LatentDiffusion.{where}: t must be {n} whole numbers (one step per row), got "
                f"shape {t.shape} of {t.dtype}."
            )
        if t.min() < 1 or t.max() > self.schedule.T:
            raise validate.InputError(
                f"LatentDiffusion.{where}: steps run from 1 to T = {self.schedule.T}, got "
                f"{int(t.min())} to {int(t.max())}."
            )
        return t.astype(np.int64)

    # -- standardizing the codes -------------------------------------------------------------------
    def set_data_scale(self, z):
        """Remember the mean and standard deviation of each dimension of the codes ``z``."""
        z = self._z(z, "set_data_scale")
        xp = self.xp
        self.data_mean[...] = xp.mean(z, axis=0)
        self.data_std[...] = xp.maximum(xp.std(z, axis=0), 1e-6)

    def standardize(self, z):
        """(z − mean) / std: codes in the units the diffusion works in."""
        return (z - self.data_mean) / self.data_std

    def unstandardize(self, z):
        """z·std + mean: back to the VAE's units."""
        return z * self.data_std + self.data_mean

    # -- forward and backward ----------------------------------------------------------------------
    def predict_noise(self, z_t, t):
        """ε̂ = ε_θ(z_t, t) for standardized z_t (B, d) and steps t (B,) or one step for all."""
        z_t = self._z(z_t, "predict_noise", "z_t")
        return self._predict(z_t, self._steps(t, z_t.shape[0], "predict_noise"))

    def _predict(self, z_t, t):
        xp = self.xp
        h = xp.concat([z_t, time_features(t, self.time_dim, z_t)], axis=1)
        return self.net(h)

    def loss(self, z0, t=None, eps=None):
        """L_simple = (1/B) Σ_i ‖ε_i − ε_θ(√ᾱ_t·z0_i + √(1 − ᾱ_t)·ε_i, t_i)‖² for a batch of codes
        ``z0`` (in the VAE's units; standardized here). ``t`` (B,) in 1 … T and ``eps`` (B, d)
        fix the step and the noise (gradient checks need both fixed); else they are drawn:
        t uniformly, ε ~ N(0, I), from the model's seeded generator."""
        z0 = self._z(z0, "loss", "z0")
        B = z0.shape[0]
        t = self.gen.host.integers(1, self.schedule.T + 1, size=B) if t is None else t
        t = self._steps(t, B, "loss")
        if eps is None:
            eps = self.gen.normal((B, self.latent_dim), self.dtype)
        eps = self._z(eps, "loss", "eps")
        return self._loss(self.standardize(z0), t, eps)

    def _loss(self, z0, t, eps):
        """The loss of standardized codes, with steps and noise given (what :func:`train` calls)."""
        xp = self.xp
        z_t = self.schedule.q_sample(z0, t, eps)
        diff = self._predict(z_t, t) - eps  # ε̂ − ε, (B, d)
        B = z0.shape[0]
        self._cache = diff
        return LossTerms(total=xp.sum(diff * diff) / B)

    def backward(self):
        """L = (1/B) Σ_i ‖ε̂_i − ε_i‖²,  ε̂ = net([z_t, features(t)])

        dL/dε̂ = 2·(ε̂ − ε)/B            (the derivative of a square, with the batch mean's 1/B)
        dL/dθ  = net.backward(dL/dε̂)    (z_t, t and ε do not depend on θ: the chain stops there)
        """
        diff = self._cache
        ### BEGIN SOLUTION
        dpred = 2.0 * diff / diff.shape[0]
        ### END SOLUTION
        self.net.backward(dpred, input_grad=False)

    # -- sampling ----------------------------------------------------------------------------------
    def ddpm_step(self, z_t, t, eps_hat, noise):
        """One step of ancestral sampling (Ho et al., 2020, Algorithm 2), from t to t − 1:

        μ_θ(z_t, t) = (z_t − β_t/√(1 − ᾱ_t) · ε̂) / √α_t     (the mean of q(z_{t−1} | z_t, z_0)
                                                            with z_0 predicted from ε̂)
        z_{t−1}     = μ_θ + σ_t · ξ,  σ_t² = β̃_t              (ξ = ``noise``; β̃_1 = 0: no noise
                                                            on the last step)
        ``t`` is one step for the whole batch.
        """
        beta, alpha = float(self.schedule.beta[t]), float(self.schedule.alpha[t])
        alpha_bar, var = float(self.schedule.alpha_bar[t]), float(self.schedule.posterior_var[t])
        ### BEGIN SOLUTION
        mean = (z_t - beta / math.sqrt(1.0 - alpha_bar) * eps_hat) / math.sqrt(alpha)
        return mean + math.sqrt(var) * noise
        ### END SOLUTION

    def ddim_step(self, z_t, t, t_prev, eps_hat, noise=None, eta: float = 0.0):
        """One step of DDIM (Song, Meng & Ermon, 2021, eq. 12), from t to an earlier t_prev:

        ẑ_0      = (z_t − √(1 − ᾱ_t)·ε̂) / √ᾱ_t                       (the predicted clean code)
        σ        = η · √((1 − ᾱ_prev)/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ_prev)
        z_prev   = √ᾱ_prev · ẑ_0 + √(1 − ᾱ_prev − σ²) · ε̂ + σ·ξ

        η = 0 is deterministic; η = 1 with t_prev = t − 1 is DDPM's step (σ² = β̃_t).
        """
        a, a_prev = float(self.schedule.alpha_bar[t]), float(self.schedule.alpha_bar[t_prev])
        z0_hat = (z_t - math.sqrt(1.0 - a) * eps_hat) / math.sqrt(a)
        sigma = eta * math.sqrt((1.0 - a_prev) / (1.0 - a)) * math.sqrt(1.0 - a / a_prev)
        z_prev = math.sqrt(a_prev) * z0_hat + math.sqrt(max(1.0 - a_prev - sigma**2, 0.0)) * eps_hat
        return z_prev if sigma == 0.0 else z_prev + sigma * noise

    def ddim_timesteps(self, steps: int) -> list[int]:
        """The subsequence τ_S > … > τ_1 of the T steps that DDIM visits: ``steps`` of them,
        evenly spaced from T down to 1 (all of T, T − 1, …, 1 when steps = T)."""
        T = self.schedule.T
        steps = validate.whole(steps, "LatentDiffusion.sample", "steps")
        if steps > T:
            raise validate.SettingError(
                f"LatentDiffusion.sample: steps must be at most T = {T} (the steps the model "
                f"was trained on), got {steps}."
            )
        if steps == 1:
            return [T]
        taus = np.round(np.linspace(1, T, steps)).astype(int)
        return [int(t) for t in taus[::-1]]

    def sample(self, n: int, seed=0, sampler: str = "ddpm", steps=None, eta: float = 0.0):
        """``n`` new codes in the VAE's units, shape (n, d): decode them with ``vae.decode``.

        ``sampler="ddpm"``: ancestral sampling through all T steps (``steps`` must be None or T).
        ``sampler="ddim"``: DDIM through ``steps`` of them (default T), deterministic for η = 0
        once z_T is drawn. The same seed gives the same codes.
        """
        return self.unstandardize(self.sample_path(n, seed, sampler, steps, eta)[-1])

    def sample_path(self, n: int, seed=0, sampler: str = "ddpm", steps=None, eta: float = 0.0):
        """Every z_t the sampler visits, from z_T to z_0, in the standardized space: a list of
        arrays (n, d), one more than the steps taken (lesson 10 draws the path)."""
        where = "LatentDiffusion.sample"
        n = validate.whole(n, where, "n")
        seed = validate.seed(seed, where)
        if sampler not in ("ddpm", "ddim"):
            raise validate.SettingError(
                f"{where}: sampler must be 'ddpm' or 'ddim', got {sampler!r}."
            )
        T = self.schedule.T
        if sampler == "ddpm" and steps not in (None, T):
            raise validate.SettingError(
                f"{where}: DDPM goes through all T = {T} steps; for {steps} steps use "
                "sampler='ddim'."
            )
        if not (isinstance(eta, (int, float)) and 0.0 <= eta <= 1.0):
            raise validate.SettingError(f"{where}: eta must be a number in [0, 1], got {eta!r}.")
        taus = self.ddim_timesteps(T if steps is None else steps)
        gen = backend.Generator(seed, namespace=self.xp)
        shape = (n, self.latent_dim)
        z = gen.normal(shape, self.dtype)  # z_T ~ N(0, I)
        path = [z]
        for i, t in enumerate(taus):
            eps_hat = self._predict(z, np.full(n, t))
            if sampler == "ddpm":
                noise = gen.normal(shape, self.dtype) if t > 1 else 0.0 * z
                z = self.ddpm_step(z, t, eps_hat, noise)
            else:
                t_prev = taus[i + 1] if i + 1 < len(taus) else 0
                noise = gen.normal(shape, self.dtype) if eta > 0 and t_prev > 0 else None
                z = self.ddim_step(z, t, t_prev, eps_hat, noise, eta)
            path.append(z)
        return path


# -- training --------------------------------------------------------------------------------------
def train(
    model: LatentDiffusion,
    z,
    steps: int = 4000,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed=0,
    log_every: int = 100,
    progress: bool = False,
) -> list[float]:
    """Fit ``model`` to the codes ``z`` (n, d) with Adam on L_simple; returns the mean loss of
    every ``log_every`` steps.

    Each step draws a minibatch of codes (with replacement), a step t ~ U{1, …, T} and noise
    ε ~ N(0, I) per code, from ``seed``. The learning rate falls linearly from ``lr`` to 0 over
    the run: late in training the loss is noisy (t and ε are random), and a shrinking step
    averages that noise out, much as the running average of weights in Ho et al. does. The
    codes' mean and standard deviation are stored in the model first (see ``set_data_scale``).
    """
    where = "diffusion.train"
    steps = validate.whole(steps, where, "steps")
    batch_size = validate.whole(batch_size, where, "batch_size")
    log_every = validate.whole(log_every, where, "log_every")
    seed = validate.seed(seed, where)
    z = model._z(z, "train")
    model.set_data_scale(z)
    z0_all = model.standardize(z)
    xp, n, T = model.xp, z.shape[0], model.schedule.T
    gen = backend.Generator(seed, namespace=xp)
    opt = Adam(model.parameters(), lr=lr)
    history, running = [], []
    bar = _progress(progress, steps)
    for step in range(steps):
        opt.lr = lr * (1.0 - step / steps)
        rows = xp.asarray(gen.host.integers(0, n, size=batch_size))
        t = gen.host.integers(1, T + 1, size=batch_size)
        eps = gen.normal((batch_size, model.latent_dim), model.dtype)
        terms = model._loss(xp.take(z0_all, rows, axis=0), t, eps)
        model.backward()
        opt.step()
        model.zero_grad()
        running.append(terms.arrays["total"])
        if len(running) == log_every or step == steps - 1:
            history.append(float(sum(float(v) for v in running) / len(running)))
            running = []
            if not math.isfinite(history[-1]):
                raise FloatingPointError(
                    f"{where}: the loss became {history[-1]} by step {step + 1}; try a smaller lr."
                )
            if bar is not None:
                bar.set_postfix(loss=f"{history[-1]:.3f}")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return history


def _progress(show, total):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="diffusion", unit="step", leave=False)


# -- checkpoints -----------------------------------------------------------------------------------
def save(model: LatentDiffusion, path) -> str:
    """Write the diffusion prior to ``path`` (.npz): weights, the codes' scale, and the settings
    in JSON, never a pickle; atomic like :func:`minivae.save` (the old file survives a failure)."""
    if not isinstance(model, LatentDiffusion):
        raise checkpoint.CheckpointError(
            f"diffusion.save writes LatentDiffusion models, not a {type(model).__name__}."
        )
    path = os.fspath(path)
    arrays = {f"param/{p.name}": backend.asnumpy(p.data) for p in model.parameters()}
    arrays["scale/mean"] = backend.asnumpy(model.data_mean)
    arrays["scale/std"] = backend.asnumpy(model.data_std)
    meta = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "config": model.config}
    arrays["meta"] = np.array(json.dumps(meta))
    return checkpoint.write_npz(path, arrays, "diffusion prior")


def load(path, backend_name: str | None = None) -> LatentDiffusion:
    """The diffusion prior saved at ``path``, on the active backend (or ``backend_name``).

    A file that is not a diffusion prior (a VAE's checkpoint, say), or is damaged, gives a
    :class:`~minivae.checkpoint.CheckpointError` with one sentence naming the file.
    """
    path = os.fspath(path)
    with checkpoint.Archive(path) as archive:  # missing, damaged, pickled, bombs: refused here
        if backend_name is not None:
            backend.set_backend(backend_name)
        config = dict(archive.meta.get("config") or {})
        kind = config.pop("kind", None)
        if kind != KIND:
            raise checkpoint.CheckpointError(
                f"{path} holds a {kind!r} model, not a latent diffusion prior (diffusion.save "
                "writes those)."
            )
        stored = {k: math.prod(h[0]) for k, h in archive.headers.items() if k != "meta"}
        try:
            sizes = [
                config["latent_dim"] + config["time_dim"],
                *config["hidden"],
                config["latent_dim"],
            ]
            need = sum(int(a) * int(b) + int(b) for a, b in zip(sizes[:-1], sizes[1:]))
            if need > sum(stored.values()) + 1000:  # a damaged file could ask for terabytes
                raise checkpoint.CheckpointError(
                    f"{path}: its settings need about {need:,} weights but the file holds "
                    f"{sum(stored.values()):,}; the file is damaged."
                )
            model = LatentDiffusion(**config, seed=None)
        except checkpoint.CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise checkpoint.CheckpointError(
                f"{path}: its settings cannot be built: {err}"
            ) from None
        params = model.parameters()
        names = {f"param/{p.name}" for p in params} | {"scale/mean", "scale/std"}
        if names != set(stored):
            raise checkpoint.CheckpointError(
                f"{path}: the arrays in the file do not match a LatentDiffusion with these "
                f"settings (missing: {sorted(names - set(stored))}, extra: "
                f"{sorted(set(stored) - names)})."
            )
        # Every array is read and checked before any is copied.
        copies = [
            (p.data, checkpoint.checked_array(archive, f"param/{p.name}", p.data, p.name))
            for p in params
        ]
        for key, dst, what in [
            ("scale/mean", model.data_mean, "the codes' mean"),
            ("scale/std", model.data_std, "the codes' standard deviation"),
        ]:
            copies.append((dst, checkpoint.checked_array(archive, key, dst, what)))
    for dst, src in copies:
        checkpoint.copy_into(dst, src)
    return model
