"""Rows on disk: a folder of .npy shards (and a .npy file) read as one array, never loaded whole."""

import numpy as np
import pytest

from aekit.datasets import DatasetError, ShardedArray, load, on_disk, open_shards


def write_shards(folder, arrays, names=None):
    folder.mkdir(exist_ok=True)
    names = names or [f"part-{i:05d}.npy" for i in range(len(arrays))]
    for name, a in zip(names, arrays):
        np.save(folder / name, a)
    return folder


@pytest.fixture
def parts():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(n, 6), dtype=np.uint8) for n in (5, 0, 7, 3)]


def test_shards_read_as_one_float32_array(tmp_path, parts):
    X = open_shards(write_shards(tmp_path / "s", parts))
    whole = np.concatenate(parts).astype(np.float32)
    assert X.shape == (15, 6) and X.dtype == np.float32 and X.source_dtype == np.uint8 and len(X) == 15
    assert on_disk(X) and not on_disk(whole)
    np.testing.assert_array_equal(np.asarray(X), whole)
    np.testing.assert_array_equal(X[3:13], whole[3:13])  # across shards, through an empty one
    np.testing.assert_array_equal(X[::4], whole[::4])
    np.testing.assert_array_equal(X[-1], whole[-1])
    ids = np.array([14, 0, 6, 6, -2, 5])  # unsorted, repeated, negative
    np.testing.assert_array_equal(X[ids], whole[ids])
    mask = whole[:, 0] > 100
    np.testing.assert_array_equal(X[mask], whole[mask])
    np.testing.assert_array_equal(X[ids, 2:4], whole[ids, 2:4])
    assert X.min() == whole.min() and X.max() == whole.max()
    with pytest.raises(IndexError, match="must lie in"):
        X[np.array([15])]


def test_shards_are_taken_in_the_order_of_their_numbers(tmp_path):
    arrays = [np.full((2, 3), i, dtype=np.float32) for i in range(11)]
    names = [f"x-{i}.npy" for i in range(11)]  # by name, x-10 would come before x-2
    X = open_shards(write_shards(tmp_path / "s", arrays, names))
    assert X[::2, 0].tolist() == list(range(11))


def test_3d_shards_are_images(tmp_path):
    X = open_shards(write_shards(tmp_path / "s", [np.zeros((2, 4, 5), np.float32)] * 2))
    assert X.shape == (4, 20) and X.image_shape == (4, 5)


def test_load_a_folder_and_npy_files_stays_on_disk(tmp_path, parts):
    ds = load(write_shards(tmp_path / "s", parts))
    assert isinstance(ds.X_train, ShardedArray) and ds.X_test.shape == (0, 6) and ds.y_train is None
    np.save(tmp_path / "f32.npy", np.ones((4, 9), np.float32))
    ds = load(tmp_path / "f32.npy")
    assert isinstance(ds.X_train, np.memmap) and ds.image_shape == (3, 3)  # float32: the file itself
    np.save(tmp_path / "u8.npy", np.ones((4, 9), np.uint8))
    assert isinstance(load(tmp_path / "u8.npy").X_train, ShardedArray)  # converted as rows are read


@pytest.mark.parametrize(
    ("arrays", "names", "match"),
    [
        ([np.zeros((2, 3)), np.zeros((2, 4))], None, r"part-00001.npy holds samples of shape \(4,\).*same number"),
        ([np.zeros((2, 3)), np.zeros((2, 3), np.float32)], None, "part-00001.npy holds float32.*same dtype"),
        ([np.zeros((2, 3))] * 3, ["a-0.npy", "a-1.npy", "a-3.npy"], "shard 2 missing"),
        ([np.zeros((2, 3))] * 2, ["a-0-of-4.npy", "a-1-of-4.npy"], "shards 2, 3 missing"),
        ([np.zeros((2, 3))] * 2, ["a-2.npy", "a-3.npy"], "shards 0, 1 missing"),
        ([np.zeros((2, 3))] * 2, ["a-0.npy", "b.npy"], "must all end in a number"),
        ([np.zeros((2, 3))] * 2, ["a-0.npy", "b-1.npy"], "different names"),
        ([np.zeros((2, 3)), np.array([["a", "b", "c"]])], None, "part-00001.npy is not numeric"),
        ([np.zeros((2, 3)), np.zeros(3)], None, r"part-00001.npy has shape \(3,\)"),
        ([np.asfortranarray(np.zeros((2, 3)))], None, "Fortran order"),
        ([np.zeros((0, 3))], None, "empty"),
    ],
)
def test_bad_shards_are_named(tmp_path, arrays, names, match):
    folder = write_shards(tmp_path / "s", arrays, names)
    with pytest.raises(DatasetError, match=match):
        load(folder)


def test_a_folder_without_shards_and_a_truncated_shard(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no .npy shards"):
        open_shards(tmp_path / "empty")
    folder = write_shards(tmp_path / "s", [np.zeros((100, 3))] * 2)
    data = (folder / "part-00001.npy").read_bytes()
    (folder / "part-00001.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="part-00001.npy cannot be read"):
        open_shards(folder)
    with pytest.raises(DatasetError, match="is not a folder"):
        open_shards(tmp_path / "nowhere")


def test_nan_in_a_shard_is_found_with_its_row(tmp_path):
    bad = np.zeros((4, 3))
    bad[2, 1] = np.nan
    with pytest.raises(DatasetError, match=r"NaN or infinite values \(first at sample 7, feature 1\)"):
        load(write_shards(tmp_path / "s", [np.zeros((5, 3)), bad]))
