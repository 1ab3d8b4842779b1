"""Kill ``aekit train`` at many moments and check what it leaves (run by tests/test_faults.py).

    python tests/fault_runner.py WORKDIR KILLS SEED

This process imports aekit once and warms torch up in one thread (no thread pool, so forking
is safe); each run of the command is a forked child (milliseconds to start), killed with SIGKILL (or sent SIGINT or
SIGTERM) at a random moment, or the moment a file shows that it is writing a checkpoint,
building its output folder, or swapping it in. ``AEKIT_SLOW_WRITES`` widens those windows.
After every kill the output folder must be absent, the previous complete run or a new complete
run (a previous run moved aside by a swap that was cut short must be put back by the next
command); the unfinished run is then resumed, itself killed at random moments, until it ends
with weights bit-identical to an uninterrupted run's. Prints one JSON report.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the children's result must not depend on threads
os.environ["AEKIT_SLOW_WRITES"] = os.environ.get("AEKIT_SLOW_WRITES", "0.01")

import matplotlib  # noqa: E402  (imported before forking, so each child starts at once)

matplotlib.use("Agg")
import matplotlib.pyplot  # noqa: E402, F401

from aekit.cli import main, runs  # noqa: E402
from aekit.files import recover  # noqa: E402

OUTPUTS = {"model", "metrics.json", "loss.png", "reconstructions.png"}
SETTINGS = ["--dataset", "digits", "--hidden", "16,8", "--epochs", "4", "--batch-size", "64"]
SETTINGS += ["--device", "cpu", "--seed", "0", "--checkpoint-every", "1"]
# a file that shows the command is in a window worth killing it in
WINDOWS = {
    "checkpoint write": lambda out: any((runs.unfinished(out) / "checkpoint").glob(".checkpoint.safetensors.*.tmp")),
    "output build": lambda out: any(out.parent.glob(f".{out.name}.tmp-*")),
    "swap": lambda out: any(out.parent.glob(f".{out.name}.old-*")),
}


def spawn(argv: list[str], log: Path) -> int:
    pid = os.fork()
    if pid == 0:  # the child: run the command, its output into log
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            status = main(argv)
        except BaseException:  # noqa: BLE001  (a traceback is a finding: report it)
            import traceback

            traceback.print_exc()
            status = 99
        os._exit(status)
    return pid


def wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def complete(out: Path) -> tuple[str, bytes] | None:
    """``(run id, weights file)`` of a complete run at ``out``, else None."""
    try:
        names = {p.name for p in out.iterdir()}
        metrics = json.loads((out / "metrics.json").read_text())
        json.loads((out / "model" / "config.json").read_text())
        pngs = all((out / name).read_bytes()[:4] == b"\x89PNG" for name in ("loss.png", "reconstructions.png"))
        if names == OUTPUTS and metrics["epochs_run"] == 4 and pngs:
            return metrics["run_id"], (out / "model" / "model.safetensors").read_bytes()
    except (OSError, ValueError, KeyError):
        pass
    return None


def state(out: Path, previous: tuple | None) -> str:
    """ "absent", "previous", "new" or "broken"."""
    if not out.exists():
        return "absent"
    found = complete(out)
    if found is None:
        return "broken"
    return "previous" if found == previous else "new"


# how the i-th run is stopped: the windows first, then signals and random moments
HOWS = [*WINDOWS, "SIGINT", "random", "SIGTERM", "random", "random"]


def run_killed(argv: list[str], out: Path, log: Path, rng: random.Random, duration: float, how: str) -> dict:
    """Run ``argv`` and stop it ``how``: SIGKILL at a random time or as soon as a window opens,
    or SIGINT or SIGTERM at a random time; what happened."""
    pid, start = spawn(argv, log), time.monotonic()
    deadline = start + (rng.uniform(0, duration) if how == "random" else 3 * duration)
    checkpoint = runs.unfinished(out) / "checkpoint" / "checkpoint.safetensors"
    seen, armed = None, False
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return {"how": how, "at": None, "status": "ended before the kill"}
        if how in WINDOWS and WINDOWS[how](out):  # only this window's test: the poll stays fast
            seen = how
            break
        if how in ("SIGINT", "SIGTERM") and not armed and checkpoint.is_file():
            # a signal at a random moment after the first checkpoint: something to resume
            armed, deadline = True, time.monotonic() + rng.uniform(0, duration / 3)
        time.sleep(0.0005)
    seen = seen or next((name for name, opened in WINDOWS.items() if opened(out)), None)
    signum = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}.get(how, signal.SIGKILL)
    os.kill(pid, signum)
    status = wait(pid)
    return {"how": how, "at": seen, "after_s": round(time.monotonic() - start, 3), "status": status}


def resume_until_done(out: Path, log: Path, rng: random.Random, duration: float, events: list) -> None:
    """``--resume`` (killed now and then itself) until the run is complete."""
    for _ in range(20):
        if runs.pending(out) is None:
            return
        argv = ["-q", "train", "--resume", str(out)]
        if rng.random() < 0.3:
            events.append({"resume": run_killed(argv, out, log, rng, duration, "random")})
        else:
            status = wait(spawn(argv, log))
            if status != 0 and "no unfinished run" not in log.read_text():
                raise AssertionError(f"--resume failed ({status}): {log.read_text()}")
    raise AssertionError("the run never completed")


def warm_up() -> None:
    """One small fit here, single-threaded, so that the children inherit torch's lazily
    initialised kernels instead of each paying for them."""
    import torch

    from aekit import AutoencoderTransformer
    from aekit.datasets import load

    assert torch.get_num_threads() == 1  # no thread pool: forking stays safe
    AutoencoderTransformer((16, 8), epochs=1, batch_size=64, device="cpu").fit(load("digits").X_train[:256])


def main_loop(work: Path, kills: int, seed: int) -> dict:
    rng, log = random.Random(seed), work / "child.log"
    out = work / "run"
    warm_up()
    start = time.monotonic()
    assert wait(spawn(["-q", "train", *SETTINGS, "--out", str(work / "reference")], log)) == 0, log.read_text()
    duration = time.monotonic() - start
    reference = complete(work / "reference")[1]
    events, problems, windows_hit = [], [], set()
    previous = None
    for i in range(kills):
        how = HOWS[i % len(HOWS)]
        if how != "swap" and rng.random() < 0.3:  # sometimes start from no folder at all
            for leftover in [out, *out.parent.glob(f".{out.name}.*")]:
                os.system(f"rm -rf '{leftover}'")
            previous = None
        event = run_killed(["-q", "train", *SETTINGS, "--restart", "--out", str(out)], out, log, rng, duration, how)
        found = state(out, previous)
        event["folder"] = found
        stopped = isinstance(event["status"], int)  # else it ended before the signal was sent
        # status 0 with a new complete run: the run finished just before the signal could act
        finished = event["status"] == 0 and found == "new"
        if (
            event["how"] in ("SIGINT", "SIGTERM")
            and stopped
            and not finished
            and event["status"] not in (130, 143, -2, -15)
        ):
            problems.append(f"kill {i}: {event['how']} ended with status {event['status']}: {log.read_text()}")
        if event["how"] in ("SIGINT", "SIGTERM") and event["status"] in (130, 143):
            message = log.read_text()
            if message.count("\n") != 1 or "interrupted" not in message:
                problems.append(f"kill {i}: {event['how']} printed {message!r}")
        if found == "broken" or (found == "absent" and previous is not None and not _aside(out)):
            problems.append(f"kill {i} ({event}): the output folder is {found}")
        recover(out)  # what the next command does first
        if previous is not None and state(out, previous) == "absent":
            problems.append(f"kill {i}: the previous run was not put back")
        windows_hit.add(event["at"])
        events.append(event)
        resume_until_done(out, log, rng, duration, events)
        if not out.exists():  # killed before its first checkpoint: nothing to resume; run again
            assert wait(spawn(["-q", "train", *SETTINGS, "--restart", "--out", str(out)], log)) == 0
        previous = complete(out)
        if previous is None or previous[1] != reference:
            problems.append(f"kill {i} ({event}): the finished run's weights differ from an uninterrupted run's")
    return {"events": events, "problems": problems, "windows_hit": sorted(w for w in windows_hit if w)}


def _aside(out: Path) -> bool:
    return any(out.parent.glob(f".{out.name}.old-*"))


if __name__ == "__main__":
    logging.getLogger("aekit").setLevel(logging.ERROR)  # "put back ..." is expected here
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    print(json.dumps(main_loop(work, int(sys.argv[2]), int(sys.argv[3]))))
