"""minivae against PyTorch on the recipe of PyTorch's example VAE, side by side.

The recipe (pytorch/examples, vae/main.py): 784-400-20, ReLU, Bernoulli decoder from logits,
Adam with lr 1e-3, batch 128, float32; here on full Fashion-MNIST (60,000 training images),
with the test loss (negative ELBO, nats per image) after each epoch. Both frameworks get the
same data and the same number of threads, and their epochs alternate within one run so that a
busy machine slows both alike.

    pip install torch==2.13.0          # optional: without it, only minivae runs
    python benchmarks/vae_vs_pytorch.py --data-dir ../shared/datasets/fashion-mnist --epochs 3

The printed table is what benchmarks/RESULTS.md records.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports kB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


class MinivaeRun:
    name = "minivae"

    def __init__(self, x, x_test, seed):
        import minivae as mv

        self.mv, self.x, self.x_test, self.seed = mv, x, x_test, seed
        self.model = mv.VAE(input_dim=784, hidden=[400], latent_dim=20, seed=seed)
        self.opt = mv.Adam(self.model.parameters(), lr=1e-3)
        self.history = {}

    def epoch(self):
        self.mv.fit(
            self.model,
            self.opt,
            self.x,
            epochs=1,
            batch_size=128,
            seed=self.seed,
            progress=False,
            history=self.history,
        )

    def test_loss(self):
        return self.mv.evaluate.elbo(self.model, self.x_test, seed=0)["total"]


class TorchRun:
    name = "pytorch"

    def __init__(self, x, x_test, seed):
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.torch = torch
        self.x, self.x_test = torch.from_numpy(x), torch.from_numpy(x_test)

        class VAE(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc21, self.fc22 = (
                    nn.Linear(784, 400),
                    nn.Linear(400, 20),
                    nn.Linear(400, 20),
                )
                self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

            def forward(self, x):
                h = torch.relu(self.fc1(x))
                mu, logvar = self.fc21(h), self.fc22(h)
                z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
                return self.fc4(torch.relu(self.fc3(z))), mu, logvar

        self.model = VAE()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.gen = torch.Generator().manual_seed(seed)

    def loss(self, xb):
        import torch.nn.functional as F

        logits, mu, logvar = self.model(xb)
        bce = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
        kld = -0.5 * self.torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    def epoch(self):
        self.model.train()
        order = self.torch.randperm(len(self.x), generator=self.gen)
        for start in range(0, len(self.x), 128):
            xb = self.x[order[start : start + 128]]
            self.opt.zero_grad()
            (self.loss(xb) / len(xb)).backward()
            self.opt.step()

    def test_loss(self):
        with self.torch.no_grad():
            total = sum(
                float(self.loss(self.x_test[i : i + 1000]))
                for i in range(0, len(self.x_test), 1000)
            )
        return total / len(self.x_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)

    import minivae as mv

    x, _ = mv.datasets.load("fashion-mnist", split="train", data_dir=args.data_dir)
    x_test, _ = mv.datasets.load("fashion-mnist", split="test", data_dir=args.data_dir)
    runs = [MinivaeRun(x, x_test, args.seed)]
    try:
        import torch

        torch.set_num_threads(args.threads)
        runs.append(TorchRun(x, x_test, args.seed))
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
        print("PyTorch is not installed (pip install torch==2.13.0): minivae only.")

    print(
        f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {args.threads} threads; Python {platform.python_version()}, "
        f"NumPy {np.__version__}, minivae {mv.__version__}"
        + (f", PyTorch {torch_version}" if torch_version else "")
    )
    print(
        f"# full Fashion-MNIST: {len(x)} train / {len(x_test)} test images, 784-400-20, "
        "Adam 1e-3, batch 128"
    )
    seconds = {r.name: [] for r in runs}
    losses = {r.name: [] for r in runs}
    for epoch in range(1, args.epochs + 1):
        for run in runs:  # alternate, epoch by epoch
            started = time.perf_counter()
            run.epoch()
            seconds[run.name].append(time.perf_counter() - started)
            losses[run.name].append(run.test_loss())
            print(
                f"epoch {epoch}  {run.name:8s} {seconds[run.name][-1]:6.2f} s  "
                f"test loss {losses[run.name][-1]:8.2f} nats",
                flush=True,
            )

    print()
    print(
        "| framework | median s/epoch | test loss after epoch "
        + " | ".join(str(e) for e in range(1, args.epochs + 1))
        + " |"
    )
    print("|---|---|" + "---|" * args.epochs)
    for run in runs:
        print(
            f"| {run.name} | {statistics.median(seconds[run.name]):.2f} | "
            + " | ".join(f"{v:.2f}" for v in losses[run.name])
            + " |"
        )
    if len(runs) == 2:
        a, b = (statistics.median(seconds[r.name]) for r in runs)
        gap = losses["minivae"][-1] - losses["pytorch"][-1]
        print(
            f"\nspeed ratio minivae / PyTorch: {a / b:.2f};  test-loss gap after "
            f"{args.epochs} epochs: {gap:+.2f} nats (minivae − PyTorch)"
        )
    print(f"peak memory of the whole run: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
