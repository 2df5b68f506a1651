"""The commands of ``python -m minivae``: train, sample, assign and grade (diffuse is in
:mod:`minivae.cli_diffuse`). Each takes the parsed flags (see :mod:`minivae.cli`) and returns the
exit status; a refused flag is a :class:`~minivae.cli.FlagError`.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import time

from .cli import FlagError

__all__ = ["cmd_sample", "cmd_train"]


# -- train -------------------------------------------------------------------------------------
MODEL_DEFAULTS = {
    "model": "vae",
    "hidden": [256],
    "latent": 2,
    "likelihood": "bernoulli",
    "lam": 0.5,
    "beta": 1.0,
    "activation": "relu",
    "lr": 1e-3,
}
"""The model and optimizer flags left out of a new run (with --resume, the checkpoint's)."""


def check_folder(path, flag):
    """Refuse a path given to ``flag`` that is not an existing folder."""
    if not os.path.isdir(path):
        state = "is a file, not a folder" if os.path.exists(path) else "does not exist"
        raise FlagError(f"{flag} {shlex.quote(path)}: {state}")


def _not_a_folder(path, flag):
    """Refuse an output file path given to ``flag`` that is an existing folder."""
    if os.path.isdir(path):
        raise FlagError(f"{flag} {shlex.quote(path)} is a folder; give the path of a file")


def _check_train_flags(args):
    """Flags that cannot go together, refused before anything is read or written."""
    if args.data_dir is not None:
        if args.dataset not in ("mnist", "fashion-mnist"):
            raise FlagError(
                f"--data-dir applies only to --dataset mnist or fashion-mnist, not "
                f"{args.dataset}; leave it out"
            )
        check_folder(args.data_dir, "--data-dir")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise FlagError(f"--out {shlex.quote(args.out)} is a file, not a folder")
    if args.resume is None:
        if args.model == "ae" and args.beta is not None:
            raise FlagError("--beta applies only to --model vae (an autoencoder has no KL term)")
        if args.likelihood != "gaussian" and args.lam is not None:
            raise FlagError("--lam applies only to --likelihood gaussian")


def _check_resume_flags(args, model, optimizer):
    """Refuse model and --lr flags that differ from the --resume checkpoint's settings."""
    config = model.config
    stored = {
        "model": config["kind"],
        "hidden": config["hidden"],
        "latent": config["latent_dim"],
        "likelihood": config["likelihood"],
        "lam": config["lam"],
        "beta": config.get("beta"),
        "activation": config["activation"],
        "lr": optimizer.hyperparameters().get("lr"),
    }
    if args.beta is not None and stored["beta"] is None:
        raise FlagError("--beta applies only to a VAE, and this checkpoint is of an autoencoder")
    for name, value in stored.items():
        given = getattr(args, name)
        if given is not None and given != value:
            shown = " ".join(map(str, given)) if isinstance(given, list) else given
            kept = " ".join(map(str, value)) if isinstance(value, list) else value
            flag = f"--{name}"
            raise FlagError(
                f"{flag} {shown} contradicts the checkpoint {shlex.quote(args.resume)}, which has "
                f"{flag} {kept}; leave {flag} out to carry on with the checkpoint's settings, or "
                "start a new run without --resume"
            )


def _load_data(args):
    from . import datasets

    progress = not args.no_progress
    x, y = datasets.load(args.dataset, split="train", data_dir=args.data_dir, progress=progress)
    x_test, y_test = datasets.load(
        args.dataset, split="test", data_dir=args.data_dir, progress=progress
    )
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    return x, y, x_test, y_test


class PrintEpoch:
    """Print one line of numbers per epoch (the progress bar only shows the current one)."""

    def on_epoch_start(self, epoch, model, optimizer, history):
        pass

    def on_epoch_end(self, epoch, model, optimizer, history):
        line = (
            f"epoch {history['epoch'][-1]:3d}  train {history['train_total'][-1]:8.2f} nats "
            f"(recon {history['train_recon'][-1]:7.2f}, KL {history['train_kl'][-1]:6.2f})"
        )
        if history.get("val_total"):
            line += f"  val {history['val_total'][-1]:8.2f} nats"
        line += f"  {history['seconds'][-1]:.1f}s"
        print(line, flush=True)


def _write_history(history, folder):
    with open(os.path.join(folder, "history.json"), "w") as f:
        json.dump(history, f, indent=1)
    keys = [k for k in history if isinstance(history[k], list)]
    with open(os.path.join(folder, "history.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(keys)
        writer.writerows(zip(*(history[k] for k in keys)))


def _write_figures(model, history, x_test, y_test, folder, seed=0):
    """Every figure of plots.py that fits this model, as PNGs in ``folder``; returns the paths."""
    from . import plots

    os.makedirs(folder, exist_ok=True)
    drawn = {
        "loss_curves": lambda: plots.loss_curves(history),
        "reconstructions": lambda: plots.reconstructions(model, x_test[:10]),
        "samples": lambda: plots.samples(model, n=64, seed=seed),
        "interpolation": lambda: plots.interpolation(model, x_test[0], x_test[1]),
        "traversals": lambda: plots.traversals(model, dims=range(min(model.latent_dim, 10))),
    }
    if model.latent_dim >= 2:  # a scatter of one dimension would be a line
        drawn["latent_scatter"] = lambda: plots.latent_scatter(model, x_test[:2000], y_test[:2000])
    if model.latent_dim == 2:
        drawn["latent_manifold"] = lambda: plots.latent_manifold(model, n=20)
    if model.kind == "vae":
        drawn["kl_per_dimension"] = lambda: plots.kl_per_dimension(model, x_test[:2000])
    paths = []
    for name, draw in drawn.items():
        path = os.path.join(folder, f"{name}.png")
        plots.save(draw(), path)
        paths.append(path)
    return paths


def _interrupted(model, optimizer, history, checkpoint, epochs, done_before):
    """Ctrl-C during fit: fit has put back the last completed epoch; save it, say so, exit 130."""
    import minivae as mv

    done = len(history.get("epoch", []))
    if done == 0:
        print("\ninterrupted before the first epoch was complete; nothing was saved.")
        return 130
    mv.save(model, checkpoint, optimizer=optimizer, history=history)
    _write_history(history, os.path.dirname(checkpoint))
    left = epochs - (done - done_before)
    print(
        f"\ninterrupted: saved epoch {done} (the last completed one) to {checkpoint}; carry on "
        f"with the same options plus --resume {shlex.quote(checkpoint)} --epochs {left}",
        flush=True,
    )
    return 130


def cmd_train(args):
    """Check the flags, load the data, build (or resume) the model, train, and report."""
    import minivae as mv
    from minivae import fast

    _check_train_flags(args)
    mv.set_backend(args.backend)
    if args.resume:
        model, optimizer, history = mv.resume(args.resume)
        _check_resume_flags(args, model, optimizer)
    settings = {
        k: MODEL_DEFAULTS[k] if v is None else v
        for k, v in vars(args).items()
        if k in MODEL_DEFAULTS
    }
    kind = model.kind if args.resume else settings["model"]
    if kind == "ae":
        for flag, value in (("--warmup", args.warmup), ("--iw-samples", args.iw_samples)):
            if value:
                raise FlagError(f"{flag} applies only to a VAE, and this model is an autoencoder")
    x, y, x_test, y_test = _load_data(args)
    if args.limit is not None and args.limit > len(x):
        raise FlagError(
            f"--limit {args.limit} is more than the {len(x)} training images of {args.dataset}"
        )
    print(
        f"data: {args.dataset}, {len(x)} training and {len(x_test)} test images of "
        f"{x.shape[1]} pixels",
        flush=True,
    )
    if args.resume:
        print(f"resuming from {args.resume} after epoch {len(history['epoch'])}")
    else:
        model, optimizer, history = _new_model(kind, settings, x.shape[1], args.seed)
    if not args.teaching:
        optimizer = fast.Adam.like(optimizer)  # the same rule, fused (see minivae/fast.py)
    print(f"model: {model}", flush=True)
    with fast.threads(args.threads) as threads:
        path = "teaching path (mv.Adam)" if args.teaching else f"fast path ({optimizer.engine})"
        print(f"training on the {path} with {threads} BLAS thread(s)", flush=True)
        return _train_and_report(args, model, optimizer, history, x, x_test, y_test)


def _new_model(kind, settings, input_dim, seed):
    """A fresh model of ``kind`` with the run's settings, its Adam and an empty history."""
    import minivae as mv

    kwargs = dict(
        input_dim=input_dim,
        hidden=settings["hidden"],
        latent_dim=settings["latent"],
        likelihood=settings["likelihood"],
        lam=settings["lam"],
        activation=settings["activation"],
        seed=seed,
    )
    if kind == "vae":
        model = mv.VAE(**kwargs, beta=settings["beta"])
    else:
        model = mv.Autoencoder(**kwargs)
    return model, mv.Adam(model.parameters(), lr=settings["lr"]), {}


def _train_and_report(args, model, optimizer, history, x, x_test, y_test):
    import minivae as mv

    os.makedirs(args.out, exist_ok=True)  # only now: a refused command leaves nothing behind
    checkpoint = os.path.join(args.out, "model.npz")
    callbacks = [PrintEpoch(), mv.SaveEachEpoch(checkpoint)]
    if args.warmup:
        callbacks.insert(0, mv.KLWarmup(epochs=args.warmup))
    started = time.perf_counter()
    done_before = len(history.get("epoch", []))
    try:
        history = mv.fit(
            model,
            optimizer,
            x,
            epochs=args.epochs,
            batch_size=args.batch_size,
            x_val=x_test,
            seed=args.seed,
            progress=not args.no_progress,
            callbacks=callbacks,
            history=history,
            clip_grad_norm=args.clip_grad_norm,
        )
    except KeyboardInterrupt:
        return _interrupted(model, optimizer, history, checkpoint, args.epochs, done_before)
    seconds = time.perf_counter() - started
    _write_history(history, args.out)
    _report(args, model, history, x_test, y_test, seconds)
    return 0


def _report(args, model, history, x_test, y_test, seconds):
    """The test numbers on the terminal and in summary.json, and the figures."""
    from minivae import evaluate

    summary = {
        "dataset": args.dataset,
        "config": model.config,
        "epochs": len(history["epoch"]),
        "train_seconds": round(seconds, 2),
        "test": evaluate.elbo(model, x_test),
    }
    test = summary["test"]
    label = "negative ELBO" if model.kind == "vae" else "reconstruction"
    print(
        f"test: {test['total']:.2f} nats per image ({label}; recon {test['recon']:.2f}, "
        f"KL {test['kl']:.2f})"
    )
    if args.iw_samples > 0:
        n = min(len(x_test), 1000)
        ll = evaluate.log_likelihood(
            model, x_test[:n], k=args.iw_samples, seed=args.seed, progress=not args.no_progress
        )
        summary["test_log_likelihood_iw"] = {"k": args.iw_samples, "examples": n, "value": ll}
        print(
            f"test log p(x) ≈ {ll:.2f} nats (importance weighted, k={args.iw_samples}, {n} images)"
        )
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    written = ["model.npz", "history.json", "history.csv", "summary.json"]
    if not args.no_figures:
        paths = _write_figures(
            model, history, x_test, y_test, os.path.join(args.out, "figures"), seed=args.seed
        )
        written.append(f"figures/ ({len(paths)} PNGs)")
    print(f"wrote {', '.join(written)} to {args.out} in {seconds:.1f}s of training")


# -- sample ------------------------------------------------------------------------------------
def cmd_sample(args):
    import numpy as np

    import minivae as mv
    from minivae import plots

    _not_a_folder(args.out, "--out")
    if args.npy:
        _not_a_folder(args.npy, "--npy")
    model = mv.load(args.checkpoint)
    images = model.sample(args.n, seed=args.seed)  # decoded once, for the PNG and the .npy
    plots.save(plots.samples(model, n=args.n, seed=args.seed, images=images), args.out)
    images = mv.asnumpy(images)
    if args.npy:
        os.makedirs(os.path.dirname(os.path.abspath(args.npy)), exist_ok=True)
        np.save(args.npy, images)
    print(f"wrote {args.n} samples to {args.out}" + (f" and {args.npy}" if args.npy else ""))
    return 0
