"""What a second thread buys the book model's training step: the fused loss's forward and
backward for one batch of 150 rows, on one thread, on two (torch's own threads inside each
operation), and as two halves of 75 rows on two Python threads of one thread each (the
gradients summed), in float32 and under ``precision="bf16-matmul"``.

A large GEMM (1024 x 1024) on one and on two threads is timed beside them: it shows what the
machine's two cores give to work that is large enough to share.

Each contender runs ``--steps`` batches in a row; the contenders alternate for ``--repeats``
rounds and the table gives medians of the time per batch. The batch is random rows in [0, 1):
the cost of these operations does not depend on the values.

    python benches/bench_step_threads.py --repeats 7
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from aekit.engine.step import matmul_precision
from aekit.nn import StackedAutoencoder, StackedConfig
from aekit.nn.fused import fused_reconstruction_loss

ROWS = 150
PRECISIONS = ("float32", "bf16-matmul")


class Contenders:
    """The timed work: one batch's gradients, whole or as two halves (the same gradients, see
    :meth:`check`), and a large GEMM for scale."""

    def __init__(self, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        model = StackedAutoencoder(StackedConfig(784, (300, 150)), generator)
        self.specs, self.tensors = model.chain()
        self.batch = torch.rand(ROWS, 784, generator=generator)
        self.worker = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(1,))
        self.big = torch.rand(1024, 1024, generator=generator)

    def gradients(self, rows: torch.Tensor) -> list[torch.Tensor]:
        """Weight and bias gradients of the mean reconstruction MSE of ``rows``."""
        loss = fused_reconstruction_loss(rows, rows, self.specs, self.tensors)
        return list(torch.autograd.grad(loss, self.tensors))

    def whole(self) -> list[torch.Tensor]:
        return self.gradients(self.batch)

    def halves(self) -> list[torch.Tensor]:
        """Two halves at once, one on the worker thread; the mean over the batch is the mean of
        the two halves' means."""
        half = ROWS // 2
        other = self.worker.submit(self.gradients, self.batch[half:])
        mine = self.gradients(self.batch[:half])
        return [a.add_(b).mul_(0.5) for a, b in zip(mine, other.result())]

    def large_gemm(self) -> torch.Tensor:
        return self.big @ self.big

    def check(self) -> None:
        """The halves' gradients equal the whole batch's (float32 rounding apart)."""
        with threads(1):
            whole, halves = self.whole(), self.halves()
        for a, b in zip(whole, halves):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_per_call(fn, steps: int) -> float:
    fn()  # warm: first-call allocations and oneDNN's kernel creation
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="alternating rounds; the table shows medians")
    parser.add_argument("--steps", type=int, default=40, help="batches per contender per round")
    args = parser.parse_args(argv)
    c = Contenders()
    c.check()
    rows = {}  # (what, precision, how) -> seconds per call, one per round
    plan = [
        ("loss forward + backward, 150 rows", "1 thread", 1, c.whole),
        ("loss forward + backward, 150 rows", "2 threads inside each operation", 2, c.whole),
        ("loss forward + backward, 150 rows", "2 halves of 75 on 2 Python threads", 1, c.halves),
    ]
    for _ in range(args.repeats):
        for precision in PRECISIONS:
            with matmul_precision(precision):
                for what, how, n, fn in plan:
                    with threads(n):
                        rows.setdefault((what, precision, how), []).append(time_per_call(fn, args.steps))
        for n in (1, 2):
            with threads(n):
                seconds = time_per_call(c.large_gemm, 10)
            rows.setdefault(("1024 x 1024 GEMM", "float32", f"{n} thread{'s' * (n > 1)}"), []).append(seconds)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available; medians of {args.repeats} rounds")
    print("| work | precision | threads | ms per call | speed-up over 1 thread |")
    print("|---|---|---|---:|---:|")
    for (what, precision, how), runs in rows.items():
        ms = statistics.median(runs) * 1e3
        one = statistics.median(rows[what, precision, "1 thread"]) * 1e3
        print(f"| {what} | {precision} | {how} | {ms:.2f} | {one / ms:.2f} |")


if __name__ == "__main__":
    main()
