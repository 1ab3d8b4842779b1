"""Everything GPU-specific, checked and timed in one run of a few minutes (needs CUDA).

aekit's CUDA paths (device-resident data, the fused Adam's direct call, streamed batches from
pinned memory on a side stream, torch.compile, CUDA-graph capture of the whole step, TF32 and
bfloat16) are written and their logic tested on the CPU; this script runs them on a GPU:

1. checks: each path trains the book model to the float32 eager result (same batches, so
   close weights and losses), streamed and in-memory batches agree bit for bit, the direct fused
   Adam call equals torch's Adam, the CUDA graph replays every step after its warm-up;
2. timing: milliseconds per epoch of the book model (tied 784-300-150-300-784, batch 150,
   Adam 0.01, L2 5e-4) for the plain PyTorch loop and for aekit eager, compiled, captured,
   compiled and captured, in float32, TF32 and bfloat16, each with its test MSE and that MSE
   over the float32 eager one (the accuracy cost). Target on an H100/H200-class GPU: at most
   33 ms per epoch.

MNIST is used when ``--data-dir`` (or $AEKIT_DATA_DIR) holds it, else synthetic low-rank data of
MNIST's shape (the timing is the same; the MSEs are then only comparable with each other).

    python benches/gpu_check.py --data-dir ../shared/datasets --epochs 5
    python benches/gpu_check.py --smoke   # on a CPU: the script's own paths, small and quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from aekit import AutoencoderTransformer, engine


def data(data_dir) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        from aekit.datasets import load

        d = load("mnist", data_dir, download=False, verbose=False)
        return d.X_train, d.X_test, "MNIST"
    except Exception:  # no MNIST on this machine: synthetic data of the same shape
        rng = np.random.default_rng(0)
        basis = rng.random((30, 784), dtype=np.float32)
        codes = rng.random((70000, 30), dtype=np.float32)
        X = np.clip(codes @ basis / 10, 0, 1).astype(np.float32)
        return X[:60000], X[60000:], "synthetic (MNIST's shape)"


DEVICE = "cuda"  # "cpu" for --smoke
CUDA_ONLY = ("cuda_graphs", "tf32", "compile")  # left out by --smoke (compile: a minute on a CPU)


def estimator(epochs: int, **options) -> AutoencoderTransformer:
    return AutoencoderTransformer(
        (300, 150), l2=5e-4, epochs=epochs, batch_size=150, learning_rate=0.01, device=DEVICE, random_state=0, **options
    )


def runnable(options: dict) -> bool:
    """Whether this run takes ``options`` (on the CPU of --smoke: no graphs, TF32 or compile;
    on CUDA no bf16-matmul, which is the CPU's)."""
    if DEVICE == "cuda":
        return options.get("precision") != "bf16-matmul"
    return not any(v in CUDA_ONLY or k in CUDA_ONLY for k, v in options.items() if v)


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


# -- checks -----------------------------------------------------------------------------------
def check(name: str, ok: bool, detail: str = "") -> bool:
    print(f"  [{'ok' if ok else 'FAILED'}] {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def checks(X: np.ndarray, tmp: str) -> bool:
    from aekit.engine.optim import FusedAdam
    from aekit.nn import StackedAutoencoder, StackedConfig

    print("checks", flush=True)
    X = X[:6000]
    results = []
    # the direct fused Adam call is torch's Adam, on CUDA too
    models = [
        StackedAutoencoder(StackedConfig(n_inputs=784, hidden_sizes=(300, 150)), torch.Generator().manual_seed(0)).to(
            DEVICE
        )
        for _ in range(2)
    ]
    opts = [engine.make_optimizer(list(m.parameters()), 0.01, m.weight_matrices(), 5e-4) for m in models]
    opts[1].__class__ = torch.optim.Adam
    batch = torch.from_numpy(X[:150]).to(DEVICE)
    for _ in range(5):
        for m, o in zip(models, opts):
            o.zero_grad(set_to_none=True)
            m.reconstruction_loss(batch, batch).backward()
            o.step()
    same = all(torch.equal(a, b) for a, b in zip(models[0].parameters(), models[1].parameters()))
    results.append(
        check("FusedAdam's direct call equals torch.optim.Adam (fused, CUDA)", same and type(opts[0]) is FusedAdam)
    )
    # the eager reference, then each path against it
    ref = estimator(2).fit(X)
    np.save(f"{tmp}/x.npy", X)
    streamed = estimator(2).fit(np.load(f"{tmp}/x.npy", mmap_mode="r"))
    same = all(torch.equal(a, b) for a, b in zip(ref.module_.parameters(), streamed.module_.parameters()))
    results.append(check("streamed batches (pinned memory, side stream) give the in-memory weights", same))
    for name, options, rtol in [
        ("compile", dict(compile=True), 1e-3),
        ("cuda_graphs", dict(cuda_graphs=True), 1e-4),
        ("compile + cuda_graphs", dict(compile=True, cuda_graphs=True), 1e-3),
        ("tf32", dict(precision="tf32"), 2e-2),
        ("bf16", dict(precision="bf16"), 5e-2),
        ("bf16 + compile + cuda_graphs", dict(precision="bf16", compile=True, cuda_graphs=True), 5e-2),
        ("bf16-matmul", dict(precision="bf16-matmul"), 5e-2),
    ]:
        if not runnable(options):
            continue
        try:
            est = estimator(2, **options).fit(X)
            if "precision" in options:  # rounding moves the first, steep steps: compare where training ends
                worst, what = abs(est.score(X) / ref.score(X) - 1), "difference of the trained MSE"
            else:  # the same arithmetic: the same loss curve
                worst = max(abs(b["loss"] / a["loss"] - 1) for a, b in zip(ref.history_, est.history_))
                what = "worst loss difference"
            results.append(check(f"{name} trains as eager float32", worst < rtol, f"{what} {worst:.2e}"))
        except Exception as error:  # report and go on: the rest is still worth knowing
            results.append(check(f"{name} trains", False, f"{type(error).__name__}: {error}"))
    return all(results)


# -- timing -----------------------------------------------------------------------------------------
class PlainTied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden1, self.hidden2 = torch.nn.Linear(784, 300), torch.nn.Linear(300, 150)
        self.bias3, self.bias4 = torch.nn.Parameter(torch.zeros(300)), torch.nn.Parameter(torch.zeros(784))

    def forward(self, x):
        h2 = F.elu(self.hidden2(F.elu(self.hidden1(x))))
        return F.linear(F.elu(F.linear(h2, self.hidden2.weight.t(), self.bias3)), self.hidden1.weight.t(), self.bias4)


def plain_loop(X, X_test, epochs: int) -> tuple[float, float]:
    """The loop a PyTorch user writes: a DataLoader over a tensor on the GPU, Adam, L2 in the loss."""
    torch.manual_seed(0)
    model = PlainTied().to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    Xd = torch.from_numpy(X).to(DEVICE)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(Xd), batch_size=150, shuffle=True)
    times = []
    for _ in range(epochs):
        sync()
        start = time.perf_counter()
        for (batch,) in loader:
            l2 = 0.5 * (model.hidden1.weight.pow(2).sum() + model.hidden2.weight.pow(2).sum())
            loss = F.mse_loss(model(batch), batch) + 5e-4 * l2
            opt.zero_grad()
            loss.backward()
            opt.step()
        sync()
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        Xt = torch.from_numpy(X_test).to(DEVICE)
        return statistics.median(times[1:] or times), float(F.mse_loss(model(Xt), Xt))


def aekit_run(X, X_test, epochs: int, **options) -> tuple[float, float]:
    est = estimator(epochs, **options).fit(X)
    seconds = [r["seconds"] for r in est.history_]
    return statistics.median(seconds[1:] or seconds), -est.score(X_test)


def timing(X, X_test, epochs: int) -> None:
    print(f"\ntiming: ms per epoch (median of epochs 2..{epochs}), {device_name()}", flush=True)
    contenders = [
        ("plain PyTorch loop (DataLoader)", None),
        ("aekit eager", {}),
        ("aekit compile", dict(compile=True)),
        ("aekit cuda_graphs", dict(cuda_graphs=True)),
        ("aekit compile + cuda_graphs", dict(compile=True, cuda_graphs=True)),
        ("aekit tf32 + compile + cuda_graphs", dict(precision="tf32", compile=True, cuda_graphs=True)),
        ("aekit bf16 + compile + cuda_graphs", dict(precision="bf16", compile=True, cuda_graphs=True)),
        ("aekit bf16 eager", dict(precision="bf16")),
    ]
    rows, reference = [], None
    for name, options in contenders:
        if options is not None and not runnable(options):
            continue
        try:
            seconds, mse = plain_loop(X, X_test, epochs) if options is None else aekit_run(X, X_test, epochs, **options)
        except Exception as error:
            print(f"  {name}: {type(error).__name__}: {error}", flush=True)
            continue
        if name == "aekit eager":
            reference = mse
        rows.append((name, seconds, mse))
        print(f"  {name}: {seconds * 1e3:.1f} ms/epoch, test MSE {mse:.5f}", flush=True)
    print(f"\n| {'contender':<36} | ms/epoch | test MSE | MSE / aekit eager |")
    print(f"|{'-' * 38}|---------:|---------:|------------------:|")
    for name, seconds, mse in rows:
        ratio = f"{mse / reference:17.3f}" if reference else " " * 17
        print(f"| {name:<36} | {seconds * 1e3:8.1f} | {mse:.5f}  | {ratio} |")


def device_name() -> str:
    return torch.cuda.get_device_name() if DEVICE == "cuda" else "CPU (--smoke)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("AEKIT_DATA_DIR"))
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timed contender")
    parser.add_argument("--skip-checks", action="store_true")
    parser.add_argument("--tmp", default="/tmp")
    parser.add_argument("--smoke", action="store_true", help="on the CPU, 6,000 rows: checks this script itself")
    args = parser.parse_args(argv)
    global DEVICE
    if args.smoke:
        DEVICE = "cpu"
    elif not torch.cuda.is_available():
        print(
            "no CUDA device: nothing to check here (the CPU tests cover the rest; --smoke runs this script on the CPU)"
        )
        return 2
    X, X_test, name = data(args.data_dir)
    if args.smoke:
        X, X_test, args.epochs = X[:6000], X_test[:1000], min(args.epochs, 2)
    print(f"torch {torch.__version__}, {device_name()}, data: {name}", flush=True)
    ok = True if args.skip_checks else checks(X, args.tmp)
    timing(X, X_test, args.epochs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
