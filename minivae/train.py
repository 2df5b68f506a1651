"""Training: epochs of shuffled minibatches, a history of the loss terms, and callbacks.

    history = mv.fit(model, opt, x_train, epochs=10, batch_size=128, x_val=x_test, seed=0)
    history["train_total"][-1], history["val_kl"][-1]       # nats per example, per epoch

Every epoch is seeded on its own (from ``seed`` and the epoch number): the shuffling order and
the sampler's noise depend only on those two, so a run stopped after epoch k and resumed from a
checkpoint (``history=`` the saved history) repeats the uninterrupted run exactly on NumPy.

Nothing is lost when something goes wrong: a NaN or infinite loss or gradient stops training
with :class:`NonFiniteLossError` and puts the model and optimizer back as they were at the end of
the last completed epoch; so does Ctrl-C (``KeyboardInterrupt``), which is then raised again.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np

from . import backend, validate

__all__ = [
    "Callback",
    "KLWarmup",
    "NonFiniteLossError",
    "SaveEachEpoch",
    "clip_grad_norm",
    "evaluate_loss",
    "fit",
    "seeded_noise",
]

TERMS = ("total", "recon", "kl")


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN or infinite loss or gradient; the model was put back to its last good
    state (the end of the last completed epoch). The message names the epoch, step and term."""


class Callback:
    """Hooks called by :func:`fit`; override the ones you need.

    ``on_epoch_start`` runs before the first batch of an epoch, ``on_epoch_end`` after the
    validation numbers of that epoch are in ``history``.
    """

    def on_epoch_start(self, epoch, model, optimizer, history):
        pass

    def on_epoch_end(self, epoch, model, optimizer, history):
        pass


class KLWarmup(Callback):
    """Raise β linearly from ``start`` to the model's β over the first ``epochs`` epochs.

    Early in training the KL term can pull every code onto the prior before the decoder has
    learned to use them ("posterior collapse"); warming β up lets reconstruction lead first.
    """

    def __init__(self, epochs: int = 10, start: float = 0.0):
        self.epochs, self.start = max(1, int(epochs)), float(start)
        self.target = None

    def on_epoch_start(self, epoch, model, optimizer, history):
        if self.target is None:
            self.target = model.config.get("beta", 1.0)
        frac = min(1.0, (epoch + 1) / self.epochs)
        model.beta = self.start + frac * (self.target - self.start)


class SaveEachEpoch(Callback):
    """Save a resumable checkpoint (model, optimizer, history) at the end of every epoch."""

    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, epoch, model, optimizer, history):
        from .checkpoint import save

        save(model, self.path, optimizer=optimizer, history=history)


def epoch_seed(seed, epoch: int, stream: int) -> int | None:
    """An independent integer seed for (run seed, epoch, stream); None stays None (unseeded)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(1)[0])


@contextlib.contextmanager
def seeded_noise(model, seed):
    """Inside the ``with`` block the model's sampler draws its noise from ``seed``; afterwards
    its own stream carries on as before, even if the block raised (an autoencoder draws none)."""
    sampler = getattr(model, "sampler", None)
    if sampler is None:
        yield
        return
    saved = sampler.seed, sampler.gen
    sampler.reseed(seed)
    try:
        yield
    finally:
        sampler.seed, sampler.gen = saved


def _batches(n: int, batch_size: int, order):
    for start in range(0, n, batch_size):
        yield order[start : min(n, start + batch_size)]


def _snapshot(model, optimizer):
    """Copies of every parameter and optimizer buffer, the step count and β: the 'last good
    state' that a NaN or Ctrl-C puts back."""
    arrays = [p.data for p in model.parameters()]
    for bufs in optimizer.buffers().values():
        arrays.extend(bufs)
    xp = model.xp
    return (
        arrays,
        [xp.asarray(a, copy=True) for a in arrays],
        optimizer.t,
        getattr(model, "beta", None),
    )


def _restore(snapshot, model, optimizer):
    arrays, copies, t, beta = snapshot
    for a, c in zip(arrays, copies):
        a[...] = c
    optimizer.t = t
    if beta is not None:
        model.beta = beta
    model.zero_grad()


def _grad_squares(params, xp):
    """Σ g² of each parameter's gradient, stacked: shape (len(params),), left on the device.

    Their sum is the squared global gradient norm ‖g‖²; a NaN or ±inf anywhere in a gradient
    makes its entry non-finite, so this one vector is both the norm and the finiteness test.
    """
    flat = [xp.reshape(p.grad, (-1,)) for p in params]
    return xp.stack([xp.vecdot(g, g) for g in flat])


def _scale_grads(params, squares, max_norm: float, xp):
    """Global-norm clipping, in place, with no read-back from the device:

        ‖g‖ = sqrt(Σ_parameters Σ g²),   g ← g · min(1, max_norm / ‖g‖)

    The direction of the step is kept; only its length is capped at ``max_norm``.
    """
    norm = xp.sqrt(xp.sum(squares))
    scale = xp.minimum(max_norm / (norm + 1e-6), 1.0)
    for p in params:
        p.grad *= xp.astype(scale, p.grad.dtype)
    return norm


def clip_grad_norm(parameters, max_norm: float):
    """Scale every gradient by min(1, max_norm / ‖g‖), where ‖g‖ is the norm of all gradients
    together (as if they were one long vector), in place. Call it between ``backward`` and
    ``opt.step()``. Returns ‖g‖ before clipping as a 0-d array (``float()`` reads it)."""
    params = list(parameters)
    if not params:
        raise validate.SettingError("clip_grad_norm: no parameters were given.")
    max_norm = validate.number(max_norm, "clip_grad_norm", "max_norm")
    xp = backend.namespace(params[0].grad)
    return _scale_grads(params, _grad_squares(params, xp), max_norm, xp)


def evaluate_loss(model, x, batch_size: int = 1000, seed=0) -> dict[str, float]:
    """The loss terms averaged over the data set, in batches, with seeded noise."""
    x = _data(model, x, "evaluate_loss", "x")
    batch_size = validate.whole(batch_size, "evaluate_loss", "batch_size")
    return _evaluate_loss(model, x, batch_size, validate.seed(seed, "evaluate_loss"))


def _evaluate_loss(model, x, batch_size, seed):
    """The loss terms of ``x`` (already checked), with the noise drawn from ``seed``; the
    sampler's own stream carries on afterwards as if this had not run."""
    xp = model.xp
    sums = {k: 0.0 for k in TERMS}
    n = x.shape[0]
    with seeded_noise(model, seed):
        for start in range(0, n, batch_size):
            xb = x[start : min(n, start + batch_size), ...]
            terms = model.loss(xb, check=False)
            stacked = xp.stack([terms.arrays[k] for k in TERMS])
            for k, v in zip(TERMS, backend.asnumpy(stacked)):
                sums[k] += float(v) * xb.shape[0]
    return {k: v / n for k, v in sums.items()}


def _data(model, x, where, name):
    """A data set checked once, whole, and put on the model's backend and dtype."""
    return validate.for_model(model, x, where, name)


def _check_fit_arguments(model, optimizer, epochs, batch_size, seed, sync_every, history):
    if getattr(model, "kind", None) not in ("ae", "vae"):
        raise TypeError(f"fit: model must be a minivae Autoencoder or VAE, got {model!r}.")
    validate.whole(epochs, "fit", "epochs", minimum=0)
    validate.whole(batch_size, "fit", "batch_size")
    validate.seed(seed, "fit")
    if sync_every is not None:
        validate.whole(sync_every, "fit", "sync_every")
    mine = {id(p) for p in model.parameters()}
    theirs = {id(p) for p in getattr(optimizer, "params", ())}
    if not mine <= theirs:
        raise validate.SettingError(
            "fit: the optimizer does not update this model's parameters (was it made for "
            "another model?); build it with mv.Adam(model.parameters())."
        )
    if history is not None and not (
        isinstance(history, dict) and all(isinstance(v, list) for v in history.values())
    ):
        raise TypeError(
            "fit: history must be the dict of lists that fit (or mv.resume) returned, "
            f"got {type(history).__name__}."
        )


def fit(
    model,
    optimizer,
    x,
    epochs: int = 10,
    batch_size: int = 128,
    x_val=None,
    seed=0,
    progress: bool = True,
    callbacks=(),
    history=None,
    sync_every: int | None = None,
    clip_grad_norm: float | None = None,
):
    """Train ``model`` with ``optimizer`` on ``x`` (N, features); returns the history dict.

    history: lists, one entry per epoch, under "epoch", "train_total", "train_recon",
    "train_kl" (averages over the epoch's batches), "val_total", "val_recon", "val_kl" (when
    ``x_val`` is given, on the model at the end of the epoch), "beta" and "seconds". Totals are
    the training objective recon + β·KL with that epoch's β: the negative ELBO when β = 1 (for
    the ELBO of a β-VAE, use ``mv.evaluate.elbo``).

    ``history`` continues a previous run (from a checkpoint): epochs are numbered on from it and
    ``epochs`` more are run. ``progress`` shows a tqdm bar per epoch (terminal or notebook).
    ``sync_every``: read the losses back and check them every that many steps (default: 50, and
    at the end of each epoch). Each step's numbers are kept until then, so a bad step is still
    named exactly; a GPU is not made to wait on every step, nor the CPU slowed by checks that
    cost as much as a small layer.
    ``clip_grad_norm``: if set, scale the gradients of each step so that their global norm is
    at most this (see :func:`clip_grad_norm`).

    ``x`` and ``x_val`` are checked once, here (shape, backend, dtype, finite values, [0, 1] for
    a Bernoulli decoder: see :mod:`minivae.validate`); the loop then trains unchecked.

    A NaN or infinite loss or gradient stops training with :class:`NonFiniteLossError` naming
    the epoch, the step and the term (or the parameter whose gradient went bad); parameters and
    optimizer state are put back as they were at the end of the last completed epoch. Ctrl-C
    (KeyboardInterrupt) does the same and is raised again: ``history`` then holds the completed
    epochs only, so ``fit(..., history=history)`` carries on as if nothing had happened.
    """
    _check_fit_arguments(model, optimizer, epochs, batch_size, seed, sync_every, history)
    if clip_grad_norm is not None:
        clip_grad_norm = validate.number(clip_grad_norm, "fit", "clip_grad_norm")
    xp = model.xp
    x = _data(model, x, "fit", "x")
    if x_val is not None:
        x_val = _data(model, x_val, "fit", "x_val")
    n = x.shape[0]
    batch_size, epochs = int(batch_size), int(epochs)
    if sync_every is None:
        sync_every = 50
    history = history if history is not None else {}
    keys = ["epoch", "train_total", "train_recon", "train_kl", "beta", "seconds"]
    if x_val is not None:
        keys += ["val_total", "val_recon", "val_kl"]
    for key in keys:
        history.setdefault(key, [])
    first = len(history["epoch"])
    sampler = getattr(model, "sampler", None)
    params = model.parameters()
    names = [p.name for p in params]
    steps = math.ceil(n / batch_size)

    # NaN and overflow are caught below, with a message naming the step; NumPy's own warnings
    # about them would only add noise.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for epoch in range(first, first + epochs):
            good = _snapshot(model, optimizer)  # the end of the last completed epoch
            bar = None
            try:
                for cb in callbacks:
                    cb.on_epoch_start(epoch, model, optimizer, history)
                if sampler is not None:
                    sampler.reseed(epoch_seed(seed, epoch, 1))
                order = np.random.default_rng(epoch_seed(seed, epoch, 0)).permutation(n)
                order = xp.asarray(order) if not xp.__name__.endswith("numpy") else order
                bar = _progress_bar(progress, steps, f"epoch {epoch + 1}/{first + epochs}")
                sums = np.zeros(3)
                pending = []  # per step: (step, rows, loss terms, Σg² per parameter) on the device
                started = time.perf_counter()
                for step, idx in enumerate(_batches(n, batch_size, order), start=1):
                    xb = xp.take(x, idx, axis=0)
                    terms = model.loss(xb, check=False)
                    model.backward()
                    squares = _grad_squares(params, xp)
                    if clip_grad_norm is not None:
                        _scale_grads(params, squares, clip_grad_norm, xp)
                    optimizer.step()
                    optimizer.zero_grad()  # one fill of the flat gradient buffer
                    losses = xp.stack([terms.arrays[k] for k in TERMS])
                    pending.append((step, xb.shape[0], losses, squares))
                    if len(pending) >= sync_every or step == steps:
                        sums += _read_back(pending, xp, epoch, names)
                        pending.clear()
                        if bar is not None:
                            bar.update(step - bar.n)
                            bar.set_postfix(
                                loss=f"{sums[0] / min(n, step * batch_size):.2f}", refresh=False
                            )
                val = None
                if x_val is not None:
                    val = _evaluate_loss(model, x_val, 1000, epoch_seed(seed, epoch, 2))
                    _check_validation(val, epoch)  # only finite, complete epochs enter history
            except (NonFiniteLossError, KeyboardInterrupt):
                _restore(good, model, optimizer)
                raise
            finally:
                if bar is not None:
                    bar.close()
            # The epoch is complete from here on: its numbers go into the history.
            history["epoch"].append(epoch + 1)
            for k, v in zip(TERMS, sums / n):
                history[f"train_{k}"].append(float(v))
            history["beta"].append(float(getattr(model, "beta", 0.0)))
            if val is not None:
                for k in TERMS:
                    history[f"val_{k}"].append(val[k])
            history["seconds"].append(time.perf_counter() - started)
            for cb in callbacks:
                cb.on_epoch_end(epoch, model, optimizer, history)
    return history


def _check_validation(val, epoch):
    """A non-finite validation loss stops training like a non-finite training loss: the
    epoch's weights are broken even if every step's numbers were finite."""
    back = (
        f"the model and optimizer were put back as they were at the end of epoch {epoch} "
        "(the last completed one)"
        if epoch
        else "the model and optimizer were put back as they were before training"
    )
    for k in TERMS:
        if not math.isfinite(val[k]):
            term = "reconstruction" if k == "recon" else k
            raise NonFiniteLossError(
                f"The validation {term} term became {val[k]} at the end of epoch {epoch + 1}; "
                f"{back}. Try a smaller learning rate or fit(..., clip_grad_norm=1.0)."
            )


def _read_back(pending, xp, epoch, names):
    """Copy the pending step losses and gradient sums to the host, check that all are finite,
    and return the batch-size-weighted sums of the loss terms."""
    losses = backend.asnumpy(xp.stack([v for _, _, v, _ in pending]))
    squares = backend.asnumpy(xp.stack([s for _, _, _, s in pending]))
    for (step, _, _, _), row, sq in zip(pending, losses, squares):
        where = f"at epoch {epoch + 1}, step {step}"
        back = (
            f"the model and optimizer were put back as they were at the end of epoch {epoch} "
            f"(the last completed one)"
            if epoch
            else "the model and optimizer were put back as they were before training"
        )
        if not np.all(np.isfinite(row)):
            bad = next(k for k, v in zip(TERMS, row) if not np.isfinite(v))
            term = "reconstruction" if bad == "recon" else bad
            raise NonFiniteLossError(
                f"The {term} term became {row[TERMS.index(bad)]} {where}; {back}. "
                "Try a smaller learning rate or fit(..., clip_grad_norm=1.0)."
            )
        if not np.all(np.isfinite(sq)):
            i = int(np.flatnonzero(~np.isfinite(sq))[0])
            state = "NaN" if np.isnan(sq[i]) else "infinite (it overflowed)"
            raise NonFiniteLossError(
                f"The gradient of {names[i]} became {state} {where} while the loss was "
                f"finite; {back}. Try a smaller learning rate or fit(..., clip_grad_norm=1.0)."
            )
    sizes = np.array([size for _, size, _, _ in pending], dtype=np.float64)
    return sizes @ losses.astype(np.float64)


def _progress_bar(progress, total, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False)
