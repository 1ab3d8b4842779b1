"""Where the IDX data sets come from, and fetching missing files into the cache.

Each file is tried on every mirror in turn, checked against a pinned hash before it is
published, and written through :func:`aekit.files.atomic_file`: an interrupted or corrupt
download never leaves a file in the cache.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import logging
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..files import atomic_file
from .dataset import DatasetError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """Where an IDX data set is downloaded from and how downloads are verified."""

    mirrors: tuple[str, ...]
    checksums: dict[str, str]  # file stem -> hex digest
    algorithm: str  # a hashlib name
    of_compressed: bool  # True: digest of the .gz bytes; False: of the decompressed bytes
    image_shape: tuple[int, int] = (28, 28)


# The named IDX data sets, by name. Tests replace entries to point at a local server.
# fmt: off
SOURCES: dict[str, Source] = {
    # Decompressed sha256, as pinned by public projects; valid for any gzip stream.
    "mnist": Source(
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        checksums={"train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                   "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                   "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                   "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        algorithm="sha256", of_compressed=False),
    # zalandoresearch/fashion-mnist publishes only the MD5 of its .gz files.
    "fashion-mnist": Source(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        checksums={"train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train-labels-idx1-ubyte":
                   "25c81989df183df01b3e8a0aad5dffbe", "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
                   "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310"},
        algorithm="md5", of_compressed=True),
}
# fmt: on

# Module-level so tests can substitute a fake opener.
_urlopen = urllib.request.urlopen
_DOWNLOAD_TIMEOUT_S = 60
# URLError, HTTPError, timeouts and refused connections are all OSErrors.
_NETWORK_ERRORS = (OSError, http.client.HTTPException)
_LOCAL_COPY_HINT = (
    "To use a local copy, pass load(..., data_dir=DIR) or set the AEKIT_DATA_DIR "
    "environment variable to a directory holding the four IDX files (plain or .gz), "
    "directly or in a subfolder named {name!r}."
)


def fetch_missing(
    key: str, cache: Path, missing: list[str], searched: list[Path], *, download: bool, verbose: bool
) -> None:
    """Download the ``missing`` files of data set ``key`` into ``cache`` as ``<stem>.gz``.

    Parameters
    ----------
    key : str
        A name in :data:`SOURCES`.
    cache : pathlib.Path
        The cache directory of the data set; created when needed.
    missing : list of str
        The file stems to fetch.
    searched : list of pathlib.Path
        The directories that were searched, named in error messages.
    download : bool
        Whether downloading is allowed; if not, say where the files were looked for.
    verbose : bool
        Whether to show a progress bar (only on a terminal).

    Raises
    ------
    DatasetError
        If downloading is not allowed, the cache cannot be created, no mirror serves a file,
        or a downloaded file does not match its pinned hash.
    """
    where = ", ".join(str(d) for d in searched)
    hint = _LOCAL_COPY_HINT.format(name=key)
    if not download:
        raise DatasetError(f"{key} files {', '.join(missing)} were not found in {where}, and download=False. {hint}")
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create cache directory {cache}: {exc}. {hint}") from exc
    for stem in missing:
        _download(key, stem, cache, where, verbose=verbose)


def _download(key: str, stem: str, cache: Path, where: str, *, verbose: bool) -> None:
    """Download ``<stem>.gz`` into ``cache``, trying each mirror in turn."""
    source, filename = SOURCES[key], stem + ".gz"
    reasons = []
    for mirror in source.mirrors:
        url = mirror if mirror.endswith("/") else mirror + "/"
        url += filename
        logger.info("downloading %s", url)
        try:
            _download_verified(url, cache / filename, source, stem, verbose=verbose)
        except _NETWORK_ERRORS as exc:
            logger.warning("download of %s failed: %s", url, exc)
            reasons.append(f"{url}: {exc}")
            continue
        return
    raise DatasetError(
        f"{key} file {filename} was not found in {where} and could not be downloaded "
        f"({'; '.join(reasons)}). {_LOCAL_COPY_HINT.format(name=key)}"
    )


def _download_verified(url: str, target: Path, source: Source, stem: str, *, verbose: bool):
    """Write ``url`` to ``target`` if its digest is the pinned one; otherwise leave nothing."""
    # "w+b": the digest is computed from what was written, before it is renamed into place
    with atomic_file(target, "w+b") as out:
        with _urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
            _copy_with_progress(resp, out, desc=target.name, verbose=verbose)
        expected, actual = source.checksums[stem], _digest(out, source, url)
        if actual != expected:
            what = "the file" if source.of_compressed else "the decompressed data"
            raise DatasetError(
                f"checksum mismatch for {target.name} downloaded from {url}: expected "
                f"{source.algorithm} {expected} of {what}, got {actual}; "
                "the download was discarded"
            )


def _copy_with_progress(resp, out, *, desc: str, verbose: bool) -> None:
    total = int(resp.headers.get("Content-Length") or 0) or None
    # disable=None lets tqdm hide the bar when stderr is not a terminal.
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc=desc,
        leave=False,
        disable=None if verbose else True,
    ) as bar:
        for chunk in iter(lambda: resp.read(1 << 16), b""):
            out.write(chunk)
            bar.update(len(chunk))


def _digest(f, source: Source, url: str) -> str:
    """Hash the open file ``f`` from its start, decompressing it first when the pin says so."""
    # usedforsecurity=False keeps MD5 usable on FIPS-mode systems; it only detects damage.
    h = hashlib.new(source.algorithm, usedforsecurity=False)
    f.seek(0)
    if source.of_compressed:
        reader = contextlib.nullcontext(f)
    else:
        reader = gzip.GzipFile(fileobj=f, mode="rb")  # leaves f open: atomic_file closes it
    try:
        with reader as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                h.update(block)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"the file downloaded from {url} is not valid gzip: {exc}") from exc
    return h.hexdigest()
