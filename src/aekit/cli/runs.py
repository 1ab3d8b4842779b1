"""Where the commands' outputs go, so that a folder is complete as a whole, and where an
unfinished ``aekit train`` keeps its checkpoint.

Every output folder (``--out``) is built in a temporary folder beside it and swapped in when
complete (:func:`aekit.files.atomic_directory`); what a killed command left beside it is
cleared, or put back, by the next command writing the same folder. A folder is only replaced
when aekit wrote it (:func:`is_output_folder`).

``aekit train --out DIR`` keeps its unfinished run in ``.DIR.unfinished/`` beside ``DIR``:
``run.json`` (the command's settings and the run's id) and ``checkpoint/``
(:mod:`aekit.checkpoints`). It is deleted once ``DIR`` holds the run's outputs, which name the
run's id in ``metrics.json``: a run killed between the two is recognised as finished.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from .. import checkpoints
from ..files import atomic_directory, check_replaceable, recover, write_json_atomic
from ..io.writing import is_model_directory

# every name a command writes into an output folder
OUTPUT_NAMES = frozenset(
    (
        "model",
        "metrics.json",
        "loss.png",
        "reconstructions.png",
        "report.html",
        "study.json",
        "study.md",
        "label_budget.png",
    )
)
_SETTINGS = "run.json"
_CHECKPOINT = "checkpoint"


def is_output_folder(path: Path) -> bool:
    """True when ``path`` holds only what aekit's commands write, with a model or a study."""
    names = {p.name for p in path.iterdir()}
    return names <= OUTPUT_NAMES and (is_model_directory(path / "model") or (path / "study.json").is_file())


def check_target(out: Path) -> None:
    """Fail now, not after training, when the outputs could not replace ``out``."""
    recover(out)
    check_replaceable(out, is_own=is_output_folder)


@contextlib.contextmanager
def output_folder(out: Path) -> Iterator[Path]:
    """A temporary folder to write the outputs into; swapped in for ``out`` when the block ends."""
    with atomic_directory(out, is_own=is_output_folder) as tmp:
        yield tmp


# -- the unfinished run of `aekit train` -----------------------------------------------------------
def unfinished(out: Path) -> Path:
    """The folder of ``out``'s unfinished run."""
    out = Path(out).absolute()
    return out.with_name(f".{out.name}.unfinished")


def checkpoint_dir(work: Path) -> Path:
    return work / _CHECKPOINT


def start(out: Path, settings: dict, *, restart: bool) -> tuple[Path, str]:
    """A new unfinished run for ``out``: ``(its folder, its id)``.

    Raises ``FileExistsError`` when ``out`` has an unfinished run with a checkpoint, unless
    ``restart``: it is continued with ``--resume``, not overwritten by mistake.
    """
    work = unfinished(out)
    state = _state(out, work)
    if state is not None and not restart:
        raise FileExistsError(
            f"{out} has an unfinished run ({state}); continue it with `aekit train --resume {out}`, "
            "or pass --restart to discard it"
        )
    shutil.rmtree(work, ignore_errors=True)
    run_id = uuid.uuid4().hex
    write_json_atomic(work / _SETTINGS, {**settings, "run_id": run_id})
    return work, run_id


def settings(out: Path) -> dict:
    """The settings of ``out``'s unfinished run (for ``--resume``)."""
    work = unfinished(out)
    if _state(out, work) is None:
        finished = (Path(out) / "metrics.json").is_file()
        raise FileNotFoundError(
            f"{out} has no unfinished run to resume"
            + (" (its run finished)" if finished else " (no checkpoint was written)")
        )
    try:
        return json.loads((work / _SETTINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise checkpoints.CheckpointError(f"{work / _SETTINGS} cannot be read ({exc})") from exc


def finish(work: Path) -> None:
    """The run's outputs are in place: its unfinished folder goes."""
    shutil.rmtree(work, ignore_errors=True)


def pending(out: Path) -> str | None:
    """Where ``out``'s unfinished run stands (``"layer 2, epoch 3 of 4"``, ``"finished"`` when
    only its outputs are missing), or None when there is none to continue."""
    return _state(out, unfinished(out))


def abandon(out: Path, work: Path) -> None:
    """A run failed: its unfinished folder goes unless a checkpoint can continue it."""
    if _state(out, work) is None:
        finish(work)


def _state(out: Path, work: Path) -> str | None:
    """Where ``out``'s unfinished run stands, or None when there is none to continue (no
    checkpoint, or one whose outputs were already published)."""
    if not (checkpoint_dir(work) / checkpoints.CHECKPOINT_FILE).is_file():
        return None
    try:
        run_id = json.loads((work / _SETTINGS).read_text(encoding="utf-8"))["run_id"]
        published = json.loads((Path(out) / "metrics.json").read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        published, run_id = None, ""
    if published == run_id:
        return None
    try:
        return checkpoints.where(checkpoint_dir(work))
    except checkpoints.CheckpointError as exc:
        return f"its checkpoint is unreadable: {exc}"


# -- signals ----------------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, with the line to tell the user."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.message, self.signum = message, signum


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, as Python raises KeyboardInterrupt for SIGINT."""

    signum = signal.SIGTERM


def _terminate(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def signals() -> Iterator[None]:
    """While the block runs, SIGTERM interrupts it as SIGINT does (checkpoint, then a message)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted(stop: KeyboardInterrupt, out: Path, work: Path) -> Interrupted:
    """The exception that tells the user where ``out``'s run stopped and how to continue it."""
    signum = getattr(stop, "signum", signal.SIGINT)
    state = _state(out, work)
    if state is None:
        finish(work)
        return Interrupted("interrupted before the first epoch ended; nothing was written", signum)
    if state == "finished":
        state = "after training, before the outputs were written"
    return Interrupted(f"interrupted ({state}); continue with: aekit train --resume {out}", signum)
