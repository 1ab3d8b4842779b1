"""Where the training step's time goes: the matrix products' share of aekit's step, against the
whole step of the plain PyTorch loop.

Trains the book model (as ``bench_train.py`` does) for one epoch at a time: the plain loop, then
aekit in float32 and with ``precision="bf16-matmul"``, alternating, on one thread (``--threads``). Inside aekit's
fused loss every product goes through one of :class:`aekit.nn.fused.Products`' three methods
(``linear``, ``input_grad``, ``weight_grad``); this script wraps them with a timer. In float32
those methods are GEMMs and nothing else, so their time is a floor under the step: no change
outside the GEMMs can bring the step below it. With bf16-matmul the methods also turn their
bfloat16 results back to float32. The table gives, per step: the whole step, the products' time,
and each as a fraction of the plain loop's step (the time ratio ``bench_train.py`` reports).

    python benches/bench_step_gemms.py --data-dir ../shared/datasets --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import bench_train
import torch

from aekit.datasets import load
from aekit.nn import fused

PRODUCT_METHODS = ("linear", "input_grad", "weight_grad")


class ProductTimer:
    """Wraps the product methods of ``fused.Products`` and its subclasses with a timer."""

    def __init__(self):
        self.seconds = 0.0
        self.originals = {}

    def __enter__(self):
        missing = [name for name in PRODUCT_METHODS if name not in vars(fused.Products)]
        if missing:  # a renamed method would otherwise go untimed and read as 0 ms
            raise RuntimeError(f"aekit.nn.fused.Products has no {', '.join(missing)}: update PRODUCT_METHODS")
        for cls in (fused.Products, fused.Bfloat16Products):
            for name in PRODUCT_METHODS:
                if name in vars(cls):
                    self.originals[cls, name] = vars(cls)[name]
                    setattr(cls, name, self._timed(vars(cls)[name]))
        return self

    def __exit__(self, *exc):
        for (cls, name), method in self.originals.items():
            setattr(cls, name, method)

    def _timed(self, method):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder with MNIST IDX files (else $AEKIT_DATA_DIR / cache)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating one-epoch runs of each; medians")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bench_train.CLOCK = time.perf_counter
    data = load("mnist", args.data_dir)
    X, bench_train.X_TEST = data.X_train, data.X_test
    steps = len(X) // 150
    plain, rows = [], {"float32": [], "bf16-matmul": []}
    for seed in range(args.repeats):
        plain.append(bench_train.train_plain(X, 1, seed)[0] / steps)
        for variant in rows:
            with ProductTimer() as timer:
                seconds, _ = bench_train.train_aekit(X, 1, seed, variant)
            rows[variant].append((seconds / steps, timer.seconds / steps))
    plain_step = statistics.median(plain)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.repeats} alternating one-epoch runs (medians), "
        "wall clock"
    )
    print("| contender | step ms | products ms | products / step | step / plain step | products / plain step |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| plain PyTorch loop | {plain_step * 1e3:.2f} | | | 1.000 | |")
    for variant, runs in rows.items():
        step = statistics.median(s for s, _ in runs)
        products = statistics.median(p for _, p in runs)
        print(
            f"| aekit {variant} | {step * 1e3:.2f} | {products * 1e3:.2f} | {products / step:.2f} | "
            f"{step / plain_step:.3f} | {products / plain_step:.3f} |"
        )


if __name__ == "__main__":
    main()
