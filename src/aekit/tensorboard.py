"""Following a run live in TensorBoard: a callback for the estimators' ``callbacks``.

Needs the optional ``tensorboard`` package (``pip install 'aekit[tensorboard]'``); aekit
imports it only when a :class:`TensorBoardLogger` is made.
"""

from __future__ import annotations

import numpy as np
import torch

EXTRA_HINT = "pip install 'aekit[tensorboard]'"


class TensorBoardLogger:
    """Write each epoch's losses, its learning rate and a reconstruction grid for TensorBoard.

    Scalars are tagged ``"<phase>/<name>"`` (``"layer 1/loss"``, ``"fine-tune/val_loss"``)
    and plotted against the run's epoch count over all phases. The reconstruction grid (top
    row: ``images``; bottom row: the network's reconstructions) is drawn every ``every``
    epochs while a module that reconstructs inputs of their width trains.

    Parameters
    ----------
    log_dir : str or os.PathLike
        The folder TensorBoard reads (``tensorboard --logdir DIR``).
    images : array of shape (n, n_features), optional
        A few inputs to reconstruct, e.g. 8 test rows.
    image_shape : tuple of int, optional
        ``(height, width)`` of one row as an image; no grid without it.
    every : int, default=1

    Raises
    ------
    ImportError
        If the tensorboard package is not installed.
    """

    def __init__(self, log_dir, *, images=None, image_shape=None, every: int = 1):
        try:
            import tensorboard  # noqa: F401  (torch's writer needs it)
        except ImportError as exc:
            raise ImportError(f"TensorBoard logging needs the tensorboard package: {EXTRA_HINT}") from exc
        self.log_dir, self.image_shape, self.every = str(log_dir), image_shape, every
        self.images = None if images is None else np.asarray(images, dtype=np.float32)
        self.step = 0  # epochs logged, over every phase
        self._writer = self._module = self._learning_rate = None

    def on_fit_start(self, module: torch.nn.Module, config) -> None:
        """Called by :func:`aekit.engine.fit` before a phase's first epoch."""
        self._module, self._learning_rate = module, config.learning_rate

    def __call__(self, record: dict) -> None:
        writer = self._open()
        self.step += 1
        phase = record.get("phase", "train")
        for name, value in record.items():
            if isinstance(value, (int, float)) and name not in ("epoch", "seconds"):
                writer.add_scalar(f"{phase}/{name}", value, self.step)
        if "learning_rate" not in record and self._learning_rate is not None:
            writer.add_scalar(f"{phase}/learning_rate", self._learning_rate, self.step)
        if self.step % self.every == 0:
            grid = self._grid()
            if grid is not None:
                writer.add_image("reconstructions", grid, self.step, dataformats="HW")
        writer.flush()  # followed live: every epoch reaches the disk

    def _open(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(self.log_dir)
        return self._writer

    @torch.no_grad()
    def _grid(self) -> np.ndarray | None:
        """Originals above reconstructions, one image per column, in [0, 1]."""
        module, images, shape = self._module, self.images, self.image_shape
        if module is None or images is None or shape is None or not hasattr(module, "decode"):
            return None
        first = next(module.parameters())
        if getattr(module.config, "n_inputs", None) != images.shape[1]:
            return None  # e.g. an inner layer-wise phase, which reconstructs codes, not images
        training = module.training
        module.eval()
        x = torch.from_numpy(images).to(device=first.device, dtype=first.dtype)
        rec = module.decode(module.encode(x)).float().cpu().numpy()
        module.train(training)
        rows = [np.concatenate(list(a.reshape(-1, *shape)), axis=1) for a in (images, rec)]
        return np.clip(np.concatenate(rows, axis=0), 0.0, 1.0)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __getstate__(self):
        # clone() deep-copies and pickle pickles callbacks: the writer (threads, open files)
        # and the module of the phase in progress are not part of a copy
        return {**self.__dict__, "_writer": None, "_module": None}
