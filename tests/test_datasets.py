"""Tests for aekit.datasets. No test contacts the internet: downloads use a local server."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import os
import socket
import sys
import threading
import urllib.response
from pathlib import Path

import numpy as np
import pytest

from aekit import datasets
from aekit.datasets import Dataset, DatasetError, available, download, load, load_file, read_idx

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

_IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(a: np.ndarray) -> bytes:
    """Encode an array in the IDX format (big-endian)."""
    a = np.asarray(a)
    header = bytes([0, 0, _IDX_CODES[a.dtype], a.ndim])
    dims = np.array(a.shape, dtype=">u4").tobytes()
    return header + dims + a.astype(a.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, a: np.ndarray, *, compress: bool = False) -> Path:
    raw = idx_bytes(a)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def fake_mnist(n_train: int = 6, n_test: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Tiny valid MNIST-like arrays, keyed by file stem."""
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_fake_mnist(directory: Path, arrays=None, *, compress: bool = True) -> dict:
    arrays = fake_mnist() if arrays is None else arrays
    directory.mkdir(parents=True, exist_ok=True)
    for stem, a in arrays.items():
        write_idx(directory / (stem + (".gz" if compress else "")), a, compress=compress)
    return arrays


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Keep every test off the user's cache, environment and the internet."""
    monkeypatch.delenv("AEKIT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "*")
    # Any download not set up by a test fails at once on a closed local port.
    for key, source in download.SOURCES.items():
        local = dataclasses.replace(source, mirrors=(f"http://127.0.0.1:{closed_port()}/",))
        monkeypatch.setitem(download.SOURCES, key, local)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path):
    """Serve a fresh directory over HTTP on 127.0.0.1; yield (directory, base URL, log)."""
    root = tmp_path / "served"
    root.mkdir()
    requests = []

    class Handler(_QuietHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_port}/", requests
    finally:
        server.shutdown()
        server.server_close()


def use_source(monkeypatch, key, mirrors, checksums):
    source = download.SOURCES[key]
    source = dataclasses.replace(source, mirrors=tuple(mirrors), checksums=checksums)
    monkeypatch.setitem(download.SOURCES, key, source)


def cache_dir(tmp_path, key="mnist") -> Path:
    return tmp_path / "cache" / "aekit" / key


# ------------------------------------------------------------------------------ digits


def test_available():
    assert available() == ["digits", "mnist", "fashion-mnist"]


def test_digits_shapes_range_dtypes_and_fixed_split():
    ds = load("digits")
    assert isinstance(ds, Dataset) and ds.name == "digits" and ds.image_shape == (8, 8)
    assert ds.X_train.shape == (1437, 64) and ds.X_test.shape == (360, 64)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.y_test.dtype == np.int64 and ds.y_train.shape == (1437,)
    both = np.concatenate([ds.X_train, ds.X_test])
    assert both.min() == 0.0 and both.max() == 1.0
    # Stratified: every class is in the test part in about its overall proportion.
    assert np.bincount(ds.y_test).min() >= 35
    again = load("DIGITS")
    np.testing.assert_array_equal(again.X_test, ds.X_test)
    assert "(1437, 64) float32" in repr(ds)


# -------------------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("dtype", list(_IDX_CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, compress):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", a, compress=compress))
    assert out.dtype == dtype.newbyteorder("=") and out.shape == a.shape
    np.testing.assert_array_equal(out, a)
    out[0, 0, 0] = 1  # the result is writable


def test_read_idx_detects_gzip_by_magic_not_extension(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    plain_named_gz = tmp_path / "plain.gz"
    plain_named_gz.write_bytes(idx_bytes(a))
    gz_named_plain = tmp_path / "compressed-idx1-ubyte"
    gz_named_plain.write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(plain_named_gz), a)
    np.testing.assert_array_equal(read_idx(gz_named_plain), a)


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\0" * 8)
    match = r"bad is not an IDX file \(bad magic number 0x12340801\)"
    with pytest.raises(DatasetError, match=match):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_truncated(tmp_path, compress):
    raw = idx_bytes(np.zeros((4, 5), dtype=np.uint8))[:-3]
    path = tmp_path / "short"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    match = "short is truncated: header says 20 bytes of data, found 17"
    with pytest.raises(DatasetError, match=match):
        read_idx(path)


def test_read_idx_truncated_header_and_extra_bytes(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros((4, 5), dtype=np.uint8))[:6])
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(path)
    path.write_bytes(idx_bytes(np.zeros((4, 5), dtype=np.uint8)) + b"junk")
    with pytest.raises(DatasetError, match="20 bytes of data, found 24"):
        read_idx(path)


def test_read_idx_corrupt_gzip_and_missing_file(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, dtype=np.uint8)))[:-12])
    with pytest.raises(DatasetError, match="broken.gz is a corrupt gzip file"):
        read_idx(path)
    with pytest.raises(DatasetError, match="does not exist"):
        read_idx(tmp_path / "nothing")


# --------------------------------------------------------------------- MNIST from disk


@pytest.mark.parametrize("subfolder", [False, True])
@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_from_data_dir(tmp_path, subfolder, compress):
    root = tmp_path / "data"
    arrays = write_fake_mnist(root / "mnist" if subfolder else root, compress=compress)
    ds = load("mnist", root, download=False)
    assert ds.name == "mnist" and ds.image_shape == (28, 28)
    assert ds.X_train.shape == (6, 784) and ds.X_test.shape == (3, 784)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    expected = arrays["train-images-idx3-ubyte"].reshape(6, 784) / 255
    np.testing.assert_allclose(ds.X_train, expected, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])


def test_load_from_env_var_and_data_dir_wins(tmp_path, monkeypatch):
    env_arrays = write_fake_mnist(tmp_path / "env" / "fashion-mnist", fake_mnist(seed=1))
    monkeypatch.setenv("AEKIT_DATA_DIR", str(tmp_path / "env"))
    ds = load("fashion_mnist", download=False)
    assert ds.name == "fashion-mnist"
    np.testing.assert_array_equal(ds.y_train, env_arrays["train-labels-idx1-ubyte"])
    arg_arrays = write_fake_mnist(tmp_path / "arg", fake_mnist(n_train=4, seed=2))
    ds = load("fashion-mnist", tmp_path / "arg", download=False)
    np.testing.assert_array_equal(ds.y_train, arg_arrays["train-labels-idx1-ubyte"])


def test_folder_named_after_other_data_set_is_not_used(tmp_path, monkeypatch):
    write_fake_mnist(tmp_path / "mnist")
    monkeypatch.setenv("AEKIT_DATA_DIR", str(tmp_path / "mnist"))
    with pytest.raises(DatasetError, match="download=False"):
        load("fashion-mnist", download=False)
    assert load("mnist", download=False).X_train.shape == (6, 784)


def test_image_label_count_mismatch(tmp_path):
    arrays = fake_mnist()
    arrays["t10k-labels-idx1-ubyte"] = arrays["t10k-labels-idx1-ubyte"][:2]
    write_fake_mnist(tmp_path / "d", arrays)
    match = r"t10k-images.*holds 3 images but .*t10k-labels.* holds 2 labels"
    with pytest.raises(DatasetError, match=match):
        load("mnist", tmp_path / "d", download=False)


def test_wrong_image_shape(tmp_path):
    arrays = fake_mnist()
    arrays["train-images-idx3-ubyte"] = np.zeros((6, 8, 8), dtype=np.uint8)
    write_fake_mnist(tmp_path / "d", arrays)
    with pytest.raises(DatasetError, match=r"train-images.*does not hold \(28, 28\) uint8 images"):
        load("mnist", tmp_path / "d", download=False)


def test_missing_data_dir(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=f"data directory {missing} does not exist"):
        load("mnist", missing)


def test_unknown_name():
    match = "unknown data set 'cifar'.*digits, mnist, fashion-mnist"
    with pytest.raises(DatasetError, match=match):
        load("cifar")


def test_not_found_without_download_names_dirs_and_hint(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as info:
        load("mnist", tmp_path / "empty", download=False)
    message = str(info.value)
    assert str(tmp_path / "empty") in message and str(cache_dir(tmp_path)) in message
    assert "AEKIT_DATA_DIR" in message and "data_dir" in message


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATASETS / "mnist").is_dir(), reason="shared MNIST copy absent")
def test_real_mnist_from_shared_copy(monkeypatch):
    monkeypatch.setenv("AEKIT_DATA_DIR", str(SHARED_DATASETS))
    ds = load("mnist", download=False)
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert 0.0 <= ds.X_train.min() and ds.X_train.max() == 1.0
    assert set(np.unique(ds.y_test)) == set(range(10))
    for stem, expected in download.SOURCES["mnist"].checksums.items():
        raw = gzip.decompress((SHARED_DATASETS / "mnist" / (stem + ".gz")).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == expected, stem


# -------------------------------------------------------------------------- downloads


def serve_fake(root: Path, arrays) -> dict[str, tuple[str, str]]:
    """Write gzipped IDX files into root; return stem -> (sha256 decompressed, md5 of .gz)."""
    digests = {}
    for stem, a in arrays.items():
        raw = idx_bytes(a)
        gz = gzip.compress(raw)
        (root / (stem + ".gz")).write_bytes(gz)
        digests[stem] = (hashlib.sha256(raw).hexdigest(), hashlib.md5(gz).hexdigest())
    return digests


@pytest.mark.parametrize("key", ["mnist", "fashion-mnist"])
def test_download_from_local_mirror(tmp_path, monkeypatch, http_dir, key):
    root, url, requests = http_dir
    arrays = fake_mnist()
    digests = serve_fake(root, arrays)
    which = 0 if key == "mnist" else 1  # MNIST pins decompressed sha256, Fashion .gz MD5
    checksums = {stem: d[which] for stem, d in digests.items()}
    # The first mirror refuses connections; the second one serves.
    use_source(monkeypatch, key, [f"http://127.0.0.1:{closed_port()}/", url], checksums)
    ds = load(key, verbose=False)
    assert ds.X_train.shape == (6, 784) and ds.name == key
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte"])
    assert sorted(p.name for p in cache_dir(tmp_path, key).iterdir()) == sorted(stem + ".gz" for stem in arrays)
    assert len(requests) == 4
    load(key)  # now served from the cache
    assert len(requests) == 4


def test_download_only_missing_files(tmp_path, monkeypatch, http_dir):
    root, url, requests = http_dir
    arrays = fake_mnist()
    digests = serve_fake(root, arrays)
    use_source(monkeypatch, "mnist", [url], {s: d[0] for s, d in digests.items()})
    partial = {"train-labels-idx1-ubyte": arrays["train-labels-idx1-ubyte"]}
    write_fake_mnist(cache_dir(tmp_path), partial)
    assert load("mnist").X_test.shape == (3, 784)
    assert "/train-labels-idx1-ubyte.gz" not in requests and len(requests) == 3


def test_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch, http_dir):
    root, url, _ = http_dir
    digests = serve_fake(root, fake_mnist())
    checksums = {s: d[0] for s, d in digests.items()}
    checksums["train-images-idx3-ubyte"] = "0" * 64
    use_source(monkeypatch, "mnist", [url], checksums)
    with pytest.raises(DatasetError) as info:
        load("mnist")
    message = str(info.value)
    assert "checksum mismatch for train-images-idx3-ubyte.gz" in message
    assert "0" * 64 in message and digests["train-images-idx3-ubyte"][0] in message
    assert list(cache_dir(tmp_path).iterdir()) == []


def test_download_all_mirrors_fail(tmp_path, monkeypatch, http_dir):
    _, url, _ = http_dir  # serves an empty directory: every file is a 404
    refused = f"http://127.0.0.1:{closed_port()}/"
    use_source(monkeypatch, "mnist", [url, refused], download.SOURCES["mnist"].checksums)
    with pytest.raises(DatasetError) as info:
        load("mnist")
    message = str(info.value)
    assert "was not found in" in message and str(cache_dir(tmp_path)) in message
    assert "could not be downloaded" in message and "404" in message
    assert refused in message and "AEKIT_DATA_DIR" in message
    assert list(cache_dir(tmp_path).iterdir()) == []


def use_fake_opener(monkeypatch, body=io.BytesIO) -> dict[str, np.ndarray]:
    """Serve fake Fashion-MNIST through a substitute for urlopen; return its arrays.

    ``body(data)`` makes the file-like response body from the bytes to serve.
    """
    arrays = fake_mnist()
    payload = {stem: gzip.compress(idx_bytes(a)) for stem, a in arrays.items()}
    checksums = {s: hashlib.md5(gz).hexdigest() for s, gz in payload.items()}
    use_source(monkeypatch, "fashion-mnist", ["https://example.invalid/f"], checksums)

    def fake_urlopen(url, timeout):
        stem = url.rsplit("/", 1)[-1].removesuffix(".gz")
        assert url == f"https://example.invalid/f/{stem}.gz"
        return urllib.response.addinfourl(body(payload[stem]), {}, url, 200)

    monkeypatch.setattr(download, "_urlopen", fake_urlopen)
    return arrays


def test_download_through_injected_opener(monkeypatch):
    arrays = use_fake_opener(monkeypatch)
    ds = load("fashion-mnist")
    assert ds.y_test.shape == (3,)
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])


class _DroppedConnection(io.BytesIO):
    """A response body that breaks off after its first few bytes."""

    def read(self, size=-1):
        if self.tell():
            raise ConnectionResetError("connection reset by peer")
        return super().read(10)


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    use_fake_opener(monkeypatch, body=_DroppedConnection)
    with pytest.raises(DatasetError, match="could not be downloaded.*connection reset by peer"):
        load("fashion-mnist")
    assert list(cache_dir(tmp_path, "fashion-mnist").iterdir()) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)], ids=["umask022", "umask077"])
def test_downloaded_files_get_the_umask_mode(tmp_path, monkeypatch, umask, mode):
    use_fake_opener(monkeypatch)
    old = os.umask(umask)
    try:
        load("fashion-mnist")
    finally:
        os.umask(old)
    cached = list(cache_dir(tmp_path, "fashion-mnist").iterdir())
    assert len(cached) == 4 and {p.stat().st_mode & 0o777 for p in cached} == {mode}


# ------------------------------------------------------------------------- user files


def test_npy(tmp_path):
    path = tmp_path / "faces.npy"
    np.save(path, np.arange(5 * 9, dtype=np.float64).reshape(5, 9))
    ds = load(str(path))
    assert ds.name == "faces.npy" and ds.image_shape == (3, 3) and ds.y_train is None
    assert ds.X_train.dtype == np.float32 and ds.X_train.max() == 44.0  # not rescaled
    assert ds.X_test.shape == (0, 9) and ds.y_test is None


def test_npy_3d_gives_image_shape(tmp_path):
    path = tmp_path / "imgs.npy"
    np.save(path, np.zeros((4, 2, 3), dtype=np.uint8))
    ds = load_file(path)
    assert ds.X_train.shape == (4, 6) and ds.image_shape == (2, 3)


def test_npz_with_labels_and_test_part(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((6, 5)), y=np.arange(6.0), X_test=np.zeros((2, 5)), y_test=[1, 2])
    ds = load(path)
    assert ds.X_train.shape == (6, 5) and ds.image_shape is None
    assert ds.y_train.dtype == np.int64 and ds.y_test.tolist() == [1, 2]
    assert ds.X_test.shape == (2, 5)


def test_npz_without_test_part(tmp_path):
    path = tmp_path / "d.npz"
    np.savez_compressed(path, X=np.ones((3, 4)), y=[0, 1, 0])
    ds = load(path)
    assert ds.X_test.shape == (0, 4) and ds.y_test.shape == (0,) and ds.y_test.dtype == np.int64


def test_csv_with_header_and_label(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,Label,b\n1,3,2.5\n\n4,0,5\n")
    ds = load(path)
    np.testing.assert_array_equal(ds.X_train, [[1, 2.5], [4, 5]])
    assert ds.y_train.tolist() == [3, 0] and ds.y_train.dtype == np.int64


def test_csv_without_header(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("1,2,3,4\n5,6,7,8\n")
    ds = load_file(path)
    assert ds.X_train.shape == (2, 4) and ds.y_train is None and ds.image_shape == (2, 2)


@pytest.mark.parametrize(
    ("filename", "content", "match"),
    [
        ("nan.csv", "1,2\nnan,3\n", r"NaN or infinite values \(first at sample 1, feature 0"),
        ("text.csv", "a,b\n1,2\n3,x\n", "line 3, column 2: 'x' is not a number"),
        ("ragged.csv", "1,2\n3\n", "line 2: 1 fields, expected 2"),
        ("empty.csv", "", "empty"),
        ("blank.csv", "\n\n", "empty"),
        ("header.csv", "a,b\n", "header line but no data"),
        ("labels.csv", "y,a\n0.5,1\n", "not whole numbers"),
        ("only_label.csv", "label\n1\n", "X is empty"),
        ("empty.npy", "", "empty"),
        ("text.npy", "hello", "cannot be read as NumPy data"),
    ],
)
def test_bad_text_files(tmp_path, filename, content, match):
    path = tmp_path / filename
    path.write_text(content)
    with pytest.raises(DatasetError, match=match) as info:
        load(path)
    assert filename in str(info.value)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.array([[1.0, np.inf]]), "NaN or infinite"),
        (np.arange(5.0), "1-D array of shape"),
        (np.array([["a", "b"]]), "not numeric"),
        (np.array([[1, None]], dtype=object), "cannot be read"),  # would need pickle
        (np.zeros((0, 3)), "empty"),
    ],
)
def test_bad_npy(tmp_path, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(DatasetError, match=match) as info:
        load_file(path)
    assert "bad.npy" in str(info.value)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"data": np.ones((2, 2))}, "no array named 'X' or 'x'"),
        ({"X": np.ones((2, 2)), "y": [1, 2, 3]}, "3 labels for 2 samples"),
        ({"X": np.ones((2, 2)), "X_test": np.ones((1, 3))}, "X_test has 3"),
        ({"X": np.ones((2, 2)), "y_test": [1]}, "y_test but no X_test"),
        ({"X": np.ones((2, 2)), "y": [0, 1], "X_test": np.ones((1, 2))}, "both parts or neither"),
    ],
)
def test_bad_npz(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=match):
        load(path)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load(tmp_path / "absent.csv")
    (tmp_path / "data.txt").write_text("1,2\n")
    with pytest.raises(DatasetError, match="unsupported file type '.txt'"):
        load(tmp_path / "data.txt")


def _imports(path: Path) -> tuple[set[str], set[tuple[int, str]]]:
    """The top-level names a module imports absolutely, and its relative imports (level, module)."""
    import ast

    absolute, relative = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            absolute.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            relative.add((node.level, node.module or ""))
    return absolute, relative


def test_imports_only_numpy_stdlib_tqdm_and_aekit_files():
    # Design rule: data loading never imports torch; of aekit it uses only its own modules
    # and aekit.files, which imports no other part of aekit.
    package = Path(datasets.__file__).parent
    own = {path.stem for path in package.glob("*.py")}
    third_party = set()
    for path in package.glob("*.py"):
        absolute, relative = _imports(path)
        third_party |= absolute - set(sys.stdlib_module_names)
        for level, module in relative:
            assert (level, module.split(".")[0]) in {(1, m) for m in own} | {(2, "files")}, (
                f"{path.name} imports {'.' * level}{module}"
            )
    absolute, relative = _imports(package.parent / "files.py")
    assert relative == set() and absolute - set(sys.stdlib_module_names) == {"numpy"}
    assert third_party == {"numpy", "sklearn", "tqdm"}
