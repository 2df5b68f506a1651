"""Training: epochs of shuffled minibatches, a history of the loss terms, and callbacks.

    history = mv.fit(model, opt, x_train, epochs=10, batch_size=128, x_val=x_test, seed=0)
    history["train_total"][-1], history["val_kl"][-1]       # nats per example, per epoch

Every epoch is seeded on its own (from ``seed`` and the epoch number): the shuffling order and
the sampler's noise depend only on those two, so a run stopped after epoch k and resumed from a
checkpoint (``history=`` the saved history) repeats the uninterrupted run exactly on NumPy.
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import backend

__all__ = ["Callback", "KLWarmup", "NonFiniteLossError", "SaveEachEpoch", "fit"]

TERMS = ("total", "recon", "kl")


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN or infinite loss; the model was put back to its last good state."""


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


def _batches(n: int, batch_size: int, order):
    for start in range(0, n, batch_size):
        yield order[start : min(n, start + batch_size)]


def _snapshot(model, optimizer):
    """Copies of every parameter and optimizer buffer (the 'last good state')."""
    arrays = [p.data for p in model.parameters()]
    for bufs in optimizer.buffers().values():
        arrays.extend(bufs)
    xp = model.xp
    return arrays, [xp.asarray(a, copy=True) for a in arrays], optimizer.t


def _restore(snapshot, optimizer):
    arrays, copies, t = snapshot
    for a, c in zip(arrays, copies):
        a[...] = c
    optimizer.t = t


def evaluate_loss(model, x, batch_size: int = 1000, seed=0) -> dict[str, float]:
    """The loss terms averaged over the data set, in batches, with seeded noise."""
    xp = model.xp
    x = model.asarray(x)
    sampler = getattr(model, "sampler", None)
    if sampler is not None:
        saved = (sampler.seed, sampler.gen)
        sampler.reseed(seed)
    sums = {k: 0.0 for k in TERMS}
    n = x.shape[0]
    for start in range(0, n, batch_size):
        xb = x[start : min(n, start + batch_size), ...]
        terms = model.loss(xb)
        stacked = xp.stack([terms.arrays[k] for k in TERMS])
        for k, v in zip(TERMS, backend.asnumpy(stacked)):
            sums[k] += float(v) * xb.shape[0]
    if sampler is not None:
        sampler.seed, sampler.gen = saved
    return {k: v / n for k, v in sums.items()}


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
):
    """Train ``model`` with ``optimizer`` on ``x`` (N, features); returns the history dict.

    history: lists, one entry per epoch, under "epoch", "train_total", "train_recon",
    "train_kl" (averages over the epoch's batches), "val_total", "val_recon", "val_kl" (when
    ``x_val`` is given, on the model at the end of the epoch), "beta" and "seconds". Totals are
    the training objective recon + β·KL with that epoch's β: the negative ELBO when β = 1 (for
    the ELBO of a β-VAE, use ``mv.evaluate.elbo``).

    ``history`` continues a previous run (from a checkpoint): epochs are numbered on from it and
    ``epochs`` more are run. ``progress`` shows a tqdm bar per epoch (terminal or notebook).
    ``sync_every``: read the loss back from the device every that many steps (default: every
    step on the CPU, every 50 on a GPU, so the GPU is not made to wait each step).

    A NaN or infinite loss stops training with :class:`NonFiniteLossError` naming the epoch,
    the step and the term; parameters and optimizer state are put back as they were at the end
    of the last good epoch.
    """
    if int(epochs) != epochs or epochs < 0:
        raise ValueError(f"epochs must be a whole number ≥ 0, got {epochs!r}.")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, got {batch_size!r}.")
    xp = model.xp
    x = model.asarray(x)
    n = x.shape[0]
    if n == 0:
        raise ValueError("The training set is empty: x has 0 rows.")
    if sync_every is None:
        sync_every = 50 if xp.__name__.endswith("cupy") else 1
    history = history if history is not None else {}
    keys = ["epoch", "train_total", "train_recon", "train_kl", "beta", "seconds"]
    if x_val is not None:
        keys += ["val_total", "val_recon", "val_kl"]
    for key in keys:
        history.setdefault(key, [])
    first = len(history["epoch"])
    sampler = getattr(model, "sampler", None)
    steps = math.ceil(n / batch_size)

    for epoch in range(first, first + int(epochs)):
        for cb in callbacks:
            cb.on_epoch_start(epoch, model, optimizer, history)
        good = _snapshot(model, optimizer)
        if sampler is not None:
            sampler.reseed(epoch_seed(seed, epoch, 1))
        order = np.random.default_rng(epoch_seed(seed, epoch, 0)).permutation(n)
        order = xp.asarray(order) if not xp.__name__.endswith("numpy") else order
        bar = _progress_bar(progress, steps, f"epoch {epoch + 1}/{first + int(epochs)}")
        sums = np.zeros(3)
        pending = []  # per-step loss terms still on the device
        started = time.perf_counter()
        for step, idx in enumerate(_batches(n, batch_size, order), start=1):
            xb = xp.take(x, idx, axis=0)
            terms = model.loss(xb)
            model.backward()
            optimizer.step()
            model.zero_grad()
            pending.append((step, xb.shape[0], xp.stack([terms.arrays[k] for k in TERMS])))
            if len(pending) >= sync_every or step == steps:
                sums += _read_back(pending, xp, epoch, good, optimizer)
                pending.clear()
                if bar is not None:
                    bar.update(step - bar.n)
                    bar.set_postfix(
                        loss=f"{sums[0] / min(n, step * batch_size):.2f}", refresh=False
                    )
        if bar is not None:
            bar.close()
        history["epoch"].append(epoch + 1)
        for k, v in zip(TERMS, sums / n):
            history[f"train_{k}"].append(float(v))
        history["beta"].append(float(getattr(model, "beta", 0.0)))
        if x_val is not None:
            val = evaluate_loss(model, x_val, seed=epoch_seed(seed, epoch, 2))
            for k in TERMS:
                history[f"val_{k}"].append(val[k])
        history["seconds"].append(time.perf_counter() - started)
        for cb in callbacks:
            cb.on_epoch_end(epoch, model, optimizer, history)
    return history


def _read_back(pending, xp, epoch, good, optimizer):
    """Copy the pending step losses to the host, check them, and return their batch-sized sums."""
    values = backend.asnumpy(xp.stack([v for _, _, v in pending]))
    for (step, _, _), row in zip(pending, values):
        if not np.all(np.isfinite(row)):
            bad = [k for k, v in zip(TERMS, row) if not np.isfinite(v)]
            term = "reconstruction" if bad[0] == "recon" else bad[0]
            _restore(good, optimizer)
            raise NonFiniteLossError(
                f"The {term} term became {row[TERMS.index(bad[0])]} at epoch {epoch + 1}, step "
                f"{step}; the model and optimizer were put back as they were at the start of "
                f"epoch {epoch + 1}. Try a smaller learning rate."
            )
    sizes = np.array([size for _, size, _ in pending], dtype=np.float64)
    return sizes @ values.astype(np.float64)


def _progress_bar(progress, total, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False)
