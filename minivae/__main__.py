"""The command line: ``python -m minivae {train, sample, figures, assign, grade, diffuse} ...``.

    python -m minivae train                      # a VAE on the embedded MNIST subset, offline
    python -m minivae train --dataset fashion-mnist --data-dir ../shared/datasets/fashion-mnist \\
        --hidden 400 --latent 20 --epochs 10 --out runs/fashion
    python -m minivae sample runs/latest/model.npz --n 64 --out samples.png
    python -m minivae figures --data-dir ../shared/datasets/fashion-mnist   # the README gallery
    python -m minivae assign course/          # the student edition of lessons and library
    python -m minivae grade course/           # a score per exercise
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys
import time

from . import cli_diffuse

try:
    from .course import cli as course_cli
except ImportError:  # a student edition has no course/ package: no assign, no grade
    course_cli = None

__all__ = ["main"]

DESCRIPTION = "minivae: train and sample variational autoencoders written by hand in NumPy/CuPy."


class FlagError(ValueError):
    """Flags that contradict each other or the --resume checkpoint: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, with a pointer to --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {value}")
    return value


def _nonnegative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got {value}")
    return value


def _float(text, zero_ok: bool):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 if zero_ok else value > 0) or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a {'number ≥ 0' if zero_ok else 'positive number'}, got {text}"
        )
    return value


def _positive_float(text):
    return _float(text, zero_ok=False)


def _nonnegative_float(text):
    return _float(text, zero_ok=True)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m minivae", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    train = sub.add_parser(
        "train",
        help="train an autoencoder or a VAE and write checkpoint, history and figures",
        description="Train a model, print train and validation nats per epoch, and write "
        "model.npz, history.json, history.csv, summary.json and figures/*.png to --out. "
        "The defaults run offline on the embedded MNIST subset in well under a minute.",
    )
    data = train.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="embedded",
        choices=["embedded", "fashion-small", "mnist", "fashion-mnist", "shapes"],
        help="which images to train on (default: embedded, shipped in the package)",
    )
    data.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="read MNIST/Fashion-MNIST IDX files from this folder (no download)",
    )
    data.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="use only the first N training images (quick experiments)",
    )
    model = train.add_argument_group("model")
    model.add_argument(
        "--model",
        default=None,
        choices=["vae", "ae"],
        help="a variational (vae) or plain (ae) autoencoder (default: vae)",
    )
    model.add_argument(
        "--hidden",
        type=_positive_int,
        nargs="*",
        default=None,
        metavar="H",
        help="hidden layer sizes, encoder side (default: 256)",
    )
    model.add_argument(
        "--latent",
        type=_positive_int,
        default=None,
        metavar="D",
        help="latent size; 2 also draws the manifold grid (default: 2)",
    )
    model.add_argument(
        "--likelihood",
        default=None,
        choices=["bernoulli", "gaussian"],
        help="decoder likelihood (default: bernoulli)",
    )
    model.add_argument(
        "--lam",
        type=_positive_float,
        default=None,
        help="λ = 1/(2σ²) of the Gaussian decoder (default: 0.5; only with --likelihood gaussian)",
    )
    model.add_argument(
        "--beta",
        type=_nonnegative_float,
        default=None,
        help="weight of the KL term (default: 1.0; only with --model vae)",
    )
    model.add_argument(
        "--activation",
        default=None,
        choices=["relu", "leaky_relu", "tanh", "sigmoid", "softplus"],
        help="hidden activation (default: relu)",
    )
    opt = train.add_argument_group("training")
    opt.add_argument("--epochs", type=_positive_int, default=50, help="(default: 50)")
    opt.add_argument("--batch-size", type=_positive_int, default=128, help="(default: 128)")
    opt.add_argument(
        "--lr", type=_positive_float, default=None, help="Adam's learning rate (default: 1e-3)"
    )
    opt.add_argument(
        "--clip-grad-norm",
        type=_positive_float,
        default=None,
        metavar="C",
        help="scale each step's gradients so their global norm is at most C (default: off)",
    )
    opt.add_argument(
        "--warmup",
        type=_positive_int,
        default=None,
        metavar="E",
        help="raise β from 0 over the first E epochs (only with --model vae)",
    )
    opt.add_argument("--seed", type=_nonnegative_int, default=0, help="(default: 0)")
    opt.add_argument(
        "--backend",
        default="numpy",
        choices=["numpy", "cupy"],
        help="numpy (CPU) or cupy (GPU) (default: numpy)",
    )
    opt.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="BLAS threads for the matrix products (default: one per core that other programs "
        "leave free, by the load average)",
    )
    opt.add_argument(
        "--teaching",
        action="store_true",
        help="train with the teaching optimizer (mv.Adam) instead of the fast path "
        "(mv.fast.Adam); both give the same numbers on NumPy",
    )
    opt.add_argument(
        "--resume",
        default=None,
        metavar="CKPT",
        help="continue from a model.npz saved by an earlier train run; its architecture and "
        "learning rate are kept, and model or --lr flags that differ from them are refused",
    )
    out = train.add_argument_group("output")
    out.add_argument(
        "--out",
        default=os.path.join("runs", "latest"),
        metavar="DIR",
        help="output folder (default: runs/latest)",
    )
    out.add_argument(
        "--iw-samples",
        type=_nonnegative_int,
        default=0,
        metavar="K",
        help="also estimate log p(x) on the test set by importance weighting "
        "with K samples (e.g. 5000; default: skip)",
    )
    out.add_argument("--no-figures", action="store_true", help="skip the figures")
    out.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    sample = sub.add_parser(
        "sample",
        help="draw new images from a trained model",
        description="Decode codes drawn from the prior N(0, I) and save them as a grid of images.",
    )
    sample.add_argument("checkpoint", help="a model.npz written by train")
    sample.add_argument("--n", type=_positive_int, default=64, help="how many (default: 64)")
    sample.add_argument("--seed", type=_nonnegative_int, default=0, help="(default: 0)")
    sample.add_argument("--out", default="samples.png", help="PNG to write (default: samples.png)")
    sample.add_argument("--npy", default=None, help="also save the images as a .npy array")

    figures = sub.add_parser(
        "figures",
        help="regenerate the README gallery in figures/ from full Fashion-MNIST",
        description="Train the gallery models on full Fashion-MNIST (a 2-D VAE for the "
        "manifold, a 20-D VAE for samples and reconstructions) and write figures/*.png.",
    )
    figures.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder holding the Fashion-MNIST IDX files (else download)",
    )
    figures.add_argument("--epochs", type=_positive_int, default=20, help="(default: 20)")
    figures.add_argument("--out", default="figures", help="(default: figures)")
    figures.add_argument("--seed", type=_nonnegative_int, default=0, help="(default: 0)")
    figures.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    if course_cli is not None:
        course_cli.add_commands(sub)  # assign, grade (minivae/course/cli.py)
    cli_diffuse.add_parser(sub, _positive_int)  # python -m minivae diffuse (minivae/cli_diffuse.py)
    return parser


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


def _folder(path, flag):
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
        _folder(args.data_dir, "--data-dir")
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


class _PrintEpoch:
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
        "latent_scatter": lambda: plots.latent_scatter(model, x_test[:2000], y_test[:2000]),
        "interpolation": lambda: plots.interpolation(model, x_test[0], x_test[1]),
        "traversals": lambda: plots.traversals(model, dims=range(min(model.latent_dim, 10))),
    }
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
        cls = mv.VAE if kind == "vae" else mv.Autoencoder
        kwargs = dict(
            input_dim=x.shape[1],
            hidden=settings["hidden"],
            latent_dim=settings["latent"],
            likelihood=settings["likelihood"],
            lam=settings["lam"],
            activation=settings["activation"],
            seed=args.seed,
        )
        if kind == "vae":
            kwargs["beta"] = settings["beta"]
        model = cls(**kwargs)
        optimizer = mv.Adam(model.parameters(), lr=settings["lr"])
        history = {}
    if not args.teaching:
        optimizer = fast.Adam.like(optimizer)  # the same rule, fused (see minivae/fast.py)
    print(f"model: {model}", flush=True)
    with fast.threads(args.threads) as threads:
        path = "teaching path (mv.Adam)" if args.teaching else f"fast path ({optimizer.engine})"
        print(f"training on the {path} with {threads} BLAS thread(s)", flush=True)
        return _train_and_report(args, model, optimizer, history, x, x_test, y_test)


def _train_and_report(args, model, optimizer, history, x, x_test, y_test):
    import minivae as mv
    from minivae import evaluate

    os.makedirs(args.out, exist_ok=True)  # only now: a refused command leaves nothing behind
    checkpoint = os.path.join(args.out, "model.npz")
    callbacks = [_PrintEpoch(), mv.SaveEachEpoch(checkpoint)]
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
    return 0


# -- sample ------------------------------------------------------------------------------------
def cmd_sample(args):
    import numpy as np

    import minivae as mv
    from minivae import plots

    _not_a_folder(args.out, "--out")
    if args.npy:
        _not_a_folder(args.npy, "--npy")
    model = mv.load(args.checkpoint)
    images = mv.asnumpy(model.sample(args.n, seed=args.seed))
    plots.save(plots.samples(model, n=args.n, seed=args.seed), args.out)
    if args.npy:
        os.makedirs(os.path.dirname(os.path.abspath(args.npy)), exist_ok=True)
        np.save(args.npy, images)
    print(f"wrote {args.n} samples to {args.out}" + (f" and {args.npy}" if args.npy else ""))
    return 0


# -- figures -----------------------------------------------------------------------------------
def cmd_figures(args):
    """The README gallery: two VAEs on full Fashion-MNIST, every figure from the better fit."""
    import minivae as mv
    from minivae import datasets, plots

    if args.data_dir is not None:
        _folder(args.data_dir, "--data-dir")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise FlagError(f"--out {shlex.quote(args.out)} is a file, not a folder")
    progress = not args.no_progress
    x, y = datasets.load("fashion-mnist", split="train", data_dir=args.data_dir, progress=progress)
    x_test, y_test = datasets.load(
        "fashion-mnist", split="test", data_dir=args.data_dir, progress=progress
    )
    os.makedirs(args.out, exist_ok=True)
    for latent in (2, 20):
        print(f"training a 784-400-{latent} VAE on {len(x)} Fashion-MNIST images", flush=True)
        model = mv.VAE(input_dim=784, hidden=[400], latent_dim=latent, seed=args.seed)
        history = mv.fit(
            model,
            mv.Adam(model.parameters()),
            x,
            epochs=args.epochs,
            x_val=x_test,
            seed=args.seed,
            progress=progress,
            callbacks=[_PrintEpoch()],
        )
        if latent == 2:
            plots.save(plots.latent_manifold(model, n=20), os.path.join(args.out, "manifold.png"))
            plots.save(
                plots.latent_scatter(model, x_test[:5000], y_test[:5000]),
                os.path.join(args.out, "latent_scatter.png"),
            )
        else:
            figs = {
                "reconstructions": plots.reconstructions(model, x_test[:10]),
                "samples": plots.samples(model, n=64, seed=args.seed),
                "traversals": plots.traversals(model, x0=x_test[0], dims=range(8)),
                "interpolation": plots.interpolation(model, x_test[0], x_test[1]),
                "loss_curves": plots.loss_curves(history),
                "kl_per_dimension": plots.kl_per_dimension(model, x_test[:5000]),
            }
            for name, fig in figs.items():
                plots.save(fig, os.path.join(args.out, f"{name}.png"))
    print(f"wrote the gallery to {args.out}/")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .backend import BackendError
    from .checkpoint import CheckpointError
    from .train import NonFiniteLossError

    handlers = {
        "train": cmd_train,
        "sample": cmd_sample,
        "figures": cmd_figures,
        "assign": lambda args: args.handler(args),
        "grade": lambda args: args.handler(args),
        "diffuse": cli_diffuse.cmd_diffuse,
    }
    try:
        return handlers[args.command](args)
    except FlagError as err:
        print(
            f"{parser.prog} {args.command}: error: {err} (see {parser.prog} {args.command} --help)",
            file=sys.stderr,
        )
        return 2
    except (BackendError, CheckpointError, NonFiniteLossError, ValueError, OSError) as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 1
    except MemoryError:
        print(
            f"{parser.prog} {args.command}: error: out of memory (a model or data set too "
            "large for this machine)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"\n{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
