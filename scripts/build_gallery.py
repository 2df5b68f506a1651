"""The README gallery: train two VAEs on full Fashion-MNIST and write figures/*.png.

    python scripts/build_gallery.py --data-dir ../shared/datasets/fashion-mnist
    python scripts/build_gallery.py            # downloads Fashion-MNIST first

A 2-D VAE draws the manifold and the latent scatter; a 20-D VAE everything else (samples,
reconstructions, traversals, interpolation, loss curves, KL per dimension). A maintainer's script,
not a command of ``python -m minivae``: it uses the same flag types and error lines.
"""

from __future__ import annotations

import os
import shlex
import sys

import minivae as mv
from minivae import datasets, plots
from minivae.cli import WHOLE, WHOLE_OR_ZERO, FlagError, Parser
from minivae.commands import PrintEpoch, check_folder


def build_parser():
    parser = Parser(
        prog="python scripts/build_gallery.py",
        description="Train the gallery models on full Fashion-MNIST (a 2-D VAE for the "
        "manifold, a 20-D VAE for samples and reconstructions) and write figures/*.png.",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder holding the Fashion-MNIST IDX files (else download)",
    )
    parser.add_argument("--epochs", type=WHOLE, default=20, help="(default: 20)")
    parser.add_argument("--out", default="figures", help="(default: figures)")
    parser.add_argument("--seed", type=WHOLE_OR_ZERO, default=0, help="(default: 0)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def build(args):
    """The README gallery: two VAEs on full Fashion-MNIST, every figure from the better fit."""
    if args.data_dir is not None:
        check_folder(args.data_dir, "--data-dir")
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
            callbacks=[PrintEpoch()],
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
    try:
        return build(args)
    except FlagError as err:
        print(f"{parser.prog}: error: {err} (see {parser.prog} --help)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
