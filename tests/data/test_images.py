"""Image loaders: layouts and ranges, and one clear error per kind of bad file."""

import gzip
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import Config
from gankit.data import ImageSource, make_source
from gankit.data.images import load_array, load_cifar10, load_folder, load_idx_dir, read_idx, safe_unpickle, write_idx
from gankit.errors import GankitError


def _digits(n=10, size=28, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def test_idx_round_trip_gz_and_plain(tmp_path):
    a = _digits()
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", a)
    write_idx(tmp_path / "plain", a)
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), a)
    assert np.array_equal(read_idx(tmp_path / "plain"), a)
    got = load_idx_dir(tmp_path)
    assert got.shape == (10, 1, 28, 28) and got.dtype == np.uint8 and np.array_equal(got[:, 0], a)


def test_truncated_idx(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", _digits())
    raw = (tmp_path / "train-images-idx3-ubyte").read_bytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw[:-100])
    with pytest.raises(GankitError, match=r"train-images-idx3-ubyte: truncated or padded IDX file"):
        load_idx_dir(tmp_path)
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress(raw)[:-30])
    with pytest.raises(GankitError, match=r"x.gz: cannot read the IDX file"):
        read_idx(gz)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(GankitError, match="bad magic"):
        read_idx(tmp_path / "bad")


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_array_layouts(tmp_path, layout):
    rgb = np.random.default_rng(1).integers(0, 256, (5, 3, 8, 8), dtype=np.uint8)
    a = {"NHW": rgb[:, 0], "NHWC": rgb.transpose(0, 2, 3, 1), "NCHW": rgb}[layout]
    np.save(tmp_path / "a.npy", a)
    got = load_array(tmp_path / "a.npy")
    want = rgb[:, :1] if layout == "NHW" else rgb
    assert np.array_equal(got, want)


def test_float_arrays_in_unit_range_and_npz_keys(tmp_path):
    x = np.linspace(0, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    np.savez(tmp_path / "a.npz", images=x, labels=np.arange(2))
    got = load_array(tmp_path / "a.npz")
    assert got.dtype == np.uint8 and got[0, 0, 0, 0] == 0 and got[1, 0, 3, 3] == 255
    np.testing.assert_array_equal(got[:, 0], np.rint(x * 255).astype(np.uint8))


@pytest.mark.parametrize("array, expect", [
    (np.zeros((4, 4), np.uint8), "rank 3"),
    (np.zeros((2, 3, 4, 5, 6), np.uint8), "rank 3"),
    (np.zeros((2, 5, 8, 8), np.uint8), "channel axis"),
    (np.array([[[1 + 2j]]]), "uint8 or float"),
    (np.zeros((0, 8, 8), np.uint8), "no images"),
    (np.full((2, 4, 4), np.nan, np.float32), "NaN or Inf"),
    (np.full((2, 4, 4), np.inf, np.float64), "NaN or Inf"),
    (np.full((2, 4, 4), 2.0, np.float32), r"must lie in \[0, 1\]"),
    (np.full((2, 4, 4), 300, np.int32), r"must lie in 0..255"),
])
def test_bad_arrays(tmp_path, array, expect):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(GankitError, match=expect) as e:
        load_array(tmp_path / "bad.npy")
    assert "bad.npy" in str(e.value)


def test_not_an_array_file(tmp_path):
    (tmp_path / "x.npy").write_text("hello")
    with pytest.raises(GankitError, match="x.npy: not a readable"):
        load_array(tmp_path / "x.npy")
    with pytest.raises(GankitError, match="does not exist"):
        load_array(tmp_path / "none.npz")


def _png(path, size=(8, 8), mode="RGB", colour=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else 128).save(path)


def test_folder_recursive_sorted_and_policies(tmp_path):
    _png(tmp_path / "b" / "2.png")
    _png(tmp_path / "a.bmp", mode="L")
    Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "c.jpg")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    got = load_folder(tmp_path)
    assert got.shape == (3, 3, 8, 8)           # one colour image -> all RGB
    assert got[0, 0, 0, 0] == got[0, 1, 0, 0] == 128  # a.bmp (grey) first
    assert load_folder(tmp_path, channels=1).shape == (3, 1, 8, 8)
    _png(tmp_path / "wide.png", size=(16, 8))
    with pytest.raises(GankitError, match="2 different sizes.*resize policy"):
        load_folder(tmp_path)
    assert load_folder(tmp_path, size=4, policy="resize").shape == (4, 3, 4, 4)
    assert load_folder(tmp_path, size=8, policy="center-crop").shape == (4, 3, 8, 8)


def test_bad_folders(tmp_path):
    with pytest.raises(GankitError, match="holds no PNG, JPEG or BMP"):
        load_folder(tmp_path)
    with pytest.raises(GankitError, match="does not exist"):
        load_folder(tmp_path / "missing")
    _png(tmp_path / "ok.png")
    (tmp_path / "fake.png").write_text("this is text, not a picture")
    with pytest.raises(GankitError, match=r"fake.png: not a readable image"):
        load_folder(tmp_path)
    (tmp_path / "fake.png").unlink()
    raw = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(GankitError, match=r"cut.png: not a readable image"):
        load_folder(tmp_path)


def test_cifar_batches_and_pickle_safety(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (7, 3072), dtype=np.uint8)
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": data, b"labels": list(range(7))}, protocol=2))
    got = load_cifar10(tmp_path)
    assert got.shape == (7, 3, 32, 32) and np.array_equal(got.reshape(7, -1), data)
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(GankitError, match="refusing to load"):
        safe_unpickle(pickle.dumps(Evil()), "evil.pkl")
    with pytest.raises(GankitError, match="no CIFAR-10 python batches"):
        load_cifar10(tmp_path / "nothing")


def test_image_source_epochs_and_state(tmp_path):
    imgs = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * 25
    src = ImageSource(imgs, torch.device("cpu"))
    src.value_range = (0.0, 1.0)
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([src.next(3, g) for _ in range(3)]).flatten()
    assert len(set(seen.tolist())) == 9                      # no repeats within an epoch
    assert src.epoch == 1
    state = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in src.state_dict().items()}
    gstate = g.get_state()
    after = [src.next(3, g) for _ in range(3)]
    assert src.epoch == 2                                     # the 10th image was dropped, new epoch
    src.load_state_dict(state)
    g.set_state(gstate)
    again = [src.next(3, g) for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(after, again))
    assert torch.equal(src.to_range(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([0.0, 1.0]))
    with pytest.raises(GankitError, match="larger than the data set"):
        src.next(11, g)


def test_make_source_resizes_and_checks_sizes(tmp_path):
    np.save(tmp_path / "a.npy", _digits(4, 20))
    cfg = Config(data=f"npz:{tmp_path / 'a.npy'}", image_size=32, resize="resize", channels=3)
    src = make_source(cfg, torch.device("cpu"))
    assert src.shape == (3, 32, 32) and len(src) == 4
    with pytest.raises(GankitError, match="20×20, not 32×32"):
        make_source(Config(data=f"npz:{tmp_path / 'a.npy'}", image_size=32), torch.device("cpu"))
    fake = make_source(Config(data="fake:3,16,16"), torch.device("cpu"))
    x = fake.next(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 3, 16, 16) and x.min() >= -1 and x.max() <= 1


def test_home_directory_in_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    _png(tmp_path / "pics" / "a.png")
    np.save(tmp_path / "x.npy", _digits(3, 8))
    assert make_source(Config(data="folder:~/pics"), torch.device("cpu")).shape == (3, 8, 8)
    assert make_source(Config(data="npz:~/x.npy"), torch.device("cpu")).shape == (1, 8, 8)
