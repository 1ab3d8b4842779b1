"""Reading IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed."""

from __future__ import annotations

import gzip
import math
import os
import sys
import zlib
from pathlib import Path

import numpy as np

from .dataset import DatasetError

# IDX type codes; multi-byte values are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not.

    Compression is recognised by the gzip magic bytes, not by the file name.

    Parameters
    ----------
    path : str or path-like
        The file to read.

    Returns
    -------
    ndarray
        The array, with the shape the header declares and the header's element type
        (uint8, int8, int16, int32, float32 or float64) in native byte order.

    Raises
    ------
    DatasetError
        If the file is missing, not valid gzip, not an IDX file, truncated, or longer
        than its header says.
    """
    path = Path(path)
    raw = _read_maybe_gzip(path)
    dtype, shape, offset = _parse_idx_header(raw, path)
    count = math.prod(shape)
    if math.prod(d for d in shape if d) * dtype.itemsize > sys.maxsize:  # not an array NumPy can shape
        raise DatasetError(f"{path} is corrupt: its header declares the impossible shape {shape}")
    expected, found = count * dtype.itemsize, len(raw) - offset
    if found < expected:
        raise DatasetError(f"{path} is truncated: header says {expected} bytes of data, found {found}")
    if found > expected:
        raise DatasetError(f"{path} is corrupt: header says {expected} bytes of data, found {found}")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape)
    # The copy makes the array writable and converts it to native byte order.
    return data.astype(dtype.newbyteorder("="))


def _read_maybe_gzip(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist") from None
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read: {exc}") from exc
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path} is a corrupt gzip file: {exc}") from exc


def _parse_idx_header(raw: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return the element type, the shape and the offset of the data."""
    if len(raw) < 4:
        raise DatasetError(f"{path} is not an IDX file (only {len(raw)} bytes long)")
    ndim = raw[3]
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or ndim == 0:
        magic = int.from_bytes(raw[:4], "big")
        raise DatasetError(f"{path} is not an IDX file (bad magic number 0x{magic:08X})")
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise DatasetError(
            f"{path} is truncated: header declares {ndim} dimensions but the file ends after {len(raw)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return _IDX_DTYPES[raw[2]], shape, offset
