"""minivae against PyTorch on the recipe of PyTorch's example VAE, side by side.

The recipe (pytorch/examples, vae/main.py): 784-400-20, ReLU, Bernoulli decoder from logits,
Adam with lr 1e-3, batch 128, float32; here on full Fashion-MNIST (60,000 training images),
with the test loss (negative ELBO, nats per image) after each epoch. Both frameworks get the
same data and the same number of threads, and their epochs alternate within one run so that a
busy machine slows both alike. Each framework lives in a process of its own, driven from this
one: in one process, PyTorch's OpenMP threads keep spinning after each operation and take the
cores from NumPy's BLAS threads (and the other way round), which would time the two fighting
each other rather than each one. The run also times the recipe's matrix products alone (forward
and backward, the same shapes, on the same batches): no implementation of this model in NumPy
can take less than that.

minivae runs twice, each in its own process: on its fast path (``mv.fast.Adam``, what
``python -m minivae train`` uses) and on its teaching path (``mv.Adam``, what the lessons use).
``--load N`` runs N CPU-bound processes beside the benchmark for the whole run, to see how each
framework copes with a busy machine.

    pip install torch==2.13.0          # optional: without it, only minivae runs
    python benchmarks/vae_vs_pytorch.py --data-dir ../shared/datasets/fashion-mnist --epochs 9
    python benchmarks/vae_vs_pytorch.py ... --epochs 5 --load 2      # with 2 competing processes
    python benchmarks/vae_vs_pytorch.py --device gpu --batch-size 1024 ...   # CuPy vs CUDA

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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads, each")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--no-torch", action="store_true", help="time minivae alone")
    parser.add_argument(
        "--load", type=int, default=0, help="CPU-bound processes to run beside the benchmark"
    )
    parser.add_argument(
        "--cupy-kernels",
        action="store_true",
        help="on the GPU, use the fast path's fused CuPy kernel (minivae.fast.CUPY_KERNELS)",
    )
    return parser.parse_args(argv)


def burn():
    """A competing CPU-bound process: it computes until the benchmark ends it."""
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2**31


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports kB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


class MinivaeRun:
    """The recipe on minivae, on its fast path (mv.fast.Adam) or its teaching path (mv.Adam)."""

    def __init__(self, x, x_test, args, path="fast"):
        import minivae as mv
        from minivae import fast

        self.mv, self.args = mv, args
        self.model = mv.VAE(input_dim=784, hidden=[400], latent_dim=20, seed=args.seed)
        self.x, self.x_test = self.model.asarray(x), self.model.asarray(x_test)  # on the device
        fast.CUPY_KERNELS = args.cupy_kernels
        optimizer = fast.Adam if path == "fast" else mv.Adam
        self.opt = optimizer(self.model.parameters(), lr=1e-3)
        self.history = {}

    def epoch(self):
        self.mv.fit(
            self.model,
            self.opt,
            self.x,
            epochs=1,
            batch_size=self.args.batch_size,
            seed=self.args.seed,
            progress=False,
            history=self.history,
        )
        self.sync()

    def sync(self):
        if self.args.device == "gpu":
            import cupy

            cupy.cuda.Device().synchronize()

    def test_loss(self):
        return self.mv.evaluate.elbo(self.model, self.x_test, seed=0)["total"]


class TorchRun:
    name = "pytorch"

    def __init__(self, x, x_test, args):
        import torch
        from torch import nn

        torch.manual_seed(args.seed)
        self.torch, self.args = torch, args
        self.device = "cuda" if args.device == "gpu" else "cpu"
        self.x = torch.from_numpy(x).to(self.device)
        self.x_test = torch.from_numpy(x_test).to(self.device)

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

        self.model = VAE().to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.gen = torch.Generator().manual_seed(args.seed)

    def loss(self, xb):
        import torch.nn.functional as F

        logits, mu, logvar = self.model(xb)
        bce = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
        kld = -0.5 * self.torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce + kld

    def epoch(self):
        self.model.train()
        order = self.torch.randperm(len(self.x), generator=self.gen).to(self.device)
        bs = self.args.batch_size
        for start in range(0, len(self.x), bs):
            xb = self.x[order[start : start + bs]]
            self.opt.zero_grad()
            (self.loss(xb) / len(xb)).backward()
            self.opt.step()
        self.sync()

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def test_loss(self):
        with self.torch.no_grad():
            total = sum(
                float(self.loss(self.x_test[i : i + 1000]))
                for i in range(0, len(self.x_test), 1000)
            )
        return total / len(self.x_test)


class MatmulFloor:
    """The recipe's matrix products alone, on NumPy/CuPy, for one epoch of batches: forward
    x·W₁, h·W_μ, h·W_logσ², z·W₃, h₃·W₄ and backward the weight gradients and the activation
    gradients (none for the data), which is all that BLAS has to do for this model."""

    name = "matmul floor"

    def __init__(self, x, args):
        import minivae as mv

        self.mv, self.args = mv, args
        gen = mv.rng(args.seed)
        self.x = mv.asarray(x)
        self.W = [
            gen.normal(shape, "float32") for shape in [(784, 400), (400, 20), (20, 400), (400, 784)]
        ]

    def epoch(self):
        W1, Wm, W3, W4 = self.W
        n, bs = self.x.shape[0], self.args.batch_size
        for start in range(0, n, bs):
            x = self.x[start : start + bs, ...]
            h1 = x @ W1
            mu, lv = h1 @ Wm, h1 @ Wm  # the two heads
            h3 = mu @ W3
            out = h3 @ W4
            gW4, dh3 = h3.T @ out, out @ W4.T  # backward: decoder
            gW3, dz = mu.T @ dh3, dh3 @ W3.T
            gWm, gWl = h1.T @ dz, h1.T @ dz  # heads
            dh1 = dz @ Wm.T + dz @ Wm.T
            gW1 = x.T @ dh1  # first layer: weight gradient only
        del lv, gW4, gW3, gWm, gWl, gW1
        if self.args.device == "gpu":
            import cupy

            cupy.cuda.Device().synchronize()


class TorchMatmulFloor:
    """The same matrix products as :class:`MatmulFloor`, in PyTorch (its own BLAS)."""

    name = "pytorch matmul floor"

    def __init__(self, x, args):
        import torch

        self.torch, self.args = torch, args
        self.device = "cuda" if args.device == "gpu" else "cpu"
        self.x = torch.from_numpy(x).to(self.device)
        gen = torch.Generator().manual_seed(args.seed)
        shapes = [(784, 400), (400, 20), (20, 400), (400, 784)]
        self.W = [torch.randn(shape, generator=gen).to(self.device) for shape in shapes]

    def epoch(self):
        W1, Wm, W3, W4 = self.W
        n, bs = self.x.shape[0], self.args.batch_size
        with self.torch.no_grad():
            for start in range(0, n, bs):
                x = self.x[start : start + bs]
                h1 = x @ W1
                mu, lv = h1 @ Wm, h1 @ Wm
                h3 = mu @ W3
                out = h3 @ W4
                gW4, dh3 = h3.T @ out, out @ W4.T
                gW3, dz = mu.T @ dh3, dh3 @ W3.T
                gWm, gWl = h1.T @ dz, h1.T @ dz
                dh1 = dz @ Wm.T + dz @ Wm.T
                gW1 = x.T @ dh1
            del lv, gW4, gW3, gWm, gWl, gW1
        if self.device == "cuda":
            self.torch.cuda.synchronize()


def worker(kind, args, conn):
    """A child process holding one run: it answers "epoch" with seconds, "test" with the test
    loss and "peak" with its own peak memory in MB, until "stop"."""
    import minivae as mv

    if args.device == "gpu":
        mv.set_backend("cupy")
    x, _ = mv.datasets.load("fashion-mnist", split="train", data_dir=args.data_dir)
    x_test, _ = mv.datasets.load("fashion-mnist", split="test", data_dir=args.data_dir)
    if kind.startswith("pytorch"):
        import torch

        torch.set_num_threads(args.threads)
        run = TorchRun(x, x_test, args) if kind == "pytorch" else TorchMatmulFloor(x, args)
    elif kind.startswith("minivae"):
        run = MinivaeRun(x, x_test, args, path=kind.split()[-1])
    else:
        run = MatmulFloor(x, args)
    conn.send("ready")
    while True:
        command = conn.recv()
        if command == "epoch":
            started = time.perf_counter()
            run.epoch()
            conn.send(time.perf_counter() - started)
        elif command == "test":
            conn.send(run.test_loss())
        elif command == "peak":
            conn.send(peak_rss_mb())
        elif command == "setup":  # how this process runs the fast path's Adam
            conn.send(run.opt.engine)
        else:
            return


def main(argv=None):
    args = parse_args(argv)
    # The same number of threads for everyone, set before any child process imports NumPy
    # (its BLAS reads the setting once, at import).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import multiprocessing

    import numpy as np

    import minivae as mv

    kinds = ["minivae fast", "minivae teaching"]
    torch_version = None
    if not args.no_torch:
        try:
            import torch

            torch_version = torch.__version__
            kinds += ["pytorch", "pytorch matmul floor"]
        except ImportError:
            print("PyTorch is not installed (pip install torch==2.13.0): minivae only.")
    kinds.append("matmul floor")
    ctx = multiprocessing.get_context("spawn")
    burners = [ctx.Process(target=burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    conns = {}
    for kind in kinds:
        parent, child = ctx.Pipe()
        ctx.Process(target=worker, args=(kind, args, child), daemon=True).start()
        conns[kind] = parent
    for conn in conns.values():
        assert conn.recv() == "ready"

    device = "GPU (CuPy / CUDA)" if args.device == "gpu" else f"CPU, {args.threads} threads each"
    if args.device == "gpu":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        device += f", {props['name'].decode()}, CuPy {cupy.__version__}"
    print(
        f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; {device}; Python {platform.python_version()}, "
        f"NumPy {np.__version__}, minivae {mv.__version__}"
        + (f", PyTorch {torch_version}" if torch_version else "")
    )
    print(
        "# full Fashion-MNIST: 60000 train / 10000 test images, 784-400-20, "
        f"Adam 1e-3, batch {args.batch_size}"
    )
    conns["minivae fast"].send("setup")
    kernel = conns["minivae fast"].recv()
    import numba

    print(f"# minivae's fast path: Adam's update by {kernel} (numba {numba.__version__})")
    if args.load:
        print(f"# {args.load} competing CPU-bound process(es) ran beside the benchmark throughout")
    seconds = {kind: [] for kind in kinds}
    losses = {kind: [] for kind in kinds if "floor" not in kind}
    for epoch in range(1, args.epochs + 1):
        for kind in kinds:  # alternate, epoch by epoch
            conns[kind].send("epoch")
            seconds[kind].append(conns[kind].recv())
            line = f"epoch {epoch}  {kind:20s} {seconds[kind][-1]:6.2f} s"
            if kind in losses:
                conns[kind].send("test")
                losses[kind].append(conns[kind].recv())
                line += f"  test loss {losses[kind][-1]:8.2f} nats"
            print(line, flush=True)
    peaks = {}
    for kind, conn in conns.items():
        conn.send("peak")
        peaks[kind] = conn.recv()
        conn.send("stop")
    for b in burners:
        b.terminate()

    med = {kind: statistics.median(s) for kind, s in seconds.items()}
    print()
    print(
        "| | median s/epoch | peak memory | test loss after epoch "
        + " | ".join(str(e) for e in range(1, args.epochs + 1))
        + " |"
    )
    print("|---|---|---|" + "---|" * args.epochs)
    for kind in losses:
        print(
            f"| {kind} | {med[kind]:.2f} | {peaks[kind]:.0f} MB | "
            + " | ".join(f"{v:.2f}" for v in losses[kind])
            + " |"
        )
    for kind, label in [
        ("matmul floor", "matrix products alone, NumPy"),
        ("pytorch matmul floor", "matrix products alone, PyTorch"),
    ]:
        if kind in med:
            print(f"| {label} | {med[kind]:.2f} | {peaks[kind]:.0f} MB |" + " |" * args.epochs)
    print()
    for path in ("fast", "teaching"):
        mine = f"minivae {path}"
        if "pytorch" in losses:
            gap = losses[mine][-1] - losses["pytorch"][-1]
            print(
                f"speed ratio minivae ({path} path) / PyTorch: {med[mine] / med['pytorch']:.2f};  "
                f"test-loss gap after {args.epochs} epochs: {gap:+.2f} nats (minivae − PyTorch)"
            )
        print(
            f"minivae ({path} path) / NumPy matrix-product floor: "
            f"{med[mine] / med['matmul floor']:.2f}"
        )
    if "pytorch" in losses:
        print(
            f"PyTorch / its own matrix-product floor: "
            f"{med['pytorch'] / med['pytorch matmul floor']:.2f};  NumPy's / PyTorch's matrix "
            f"products: {med['matmul floor'] / med['pytorch matmul floor']:.2f}"
        )


if __name__ == "__main__":
    main()
