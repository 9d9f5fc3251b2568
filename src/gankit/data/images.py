"""Image files and arrays into memory: IDX (MNIST family), folders of pictures, .npy/.npz
arrays, CIFAR-10 python batches, and random "fake" images.

Every loader returns a uint8 array of shape [N, C, H, W] (C = 1 or 3), the layout and range
gankit keeps images in while training (converted to float per minibatch, see
:class:`ImageSource`). Every problem with a user's file is a :class:`GankitError` naming
the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..config import RESIZE_POLICIES
from ..errors import GankitError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux /proc/meminfo), or None."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits_in_memory(nbytes: int, what: str) -> None:
    """Refuse, before loading, a data set that would not fit in the available memory
    (gankit holds images in memory as uint8; it needs them plus a working margin)."""
    avail = available_memory()
    if avail is not None and nbytes > 0.8 * avail:
        raise GankitError(f"{what} needs about {nbytes / 2**30:.1f} GiB in memory and only {avail / 2**30:.1f} GiB "
                          "is available; use a subset, a smaller --image-size, or a machine with more memory")


# ----------------------------------------------------------------------------- IDX
def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a numpy array, its header checked against its size.

    The header is read first; the data are then read (inflated, for ``.gz``) in pieces up to
    the size the header declares, after checking that it fits in memory: a small file that
    inflates to gigabytes, or a header that claims more than the file holds, is refused
    before the memory is spent."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            with (gzip.GzipFile(fileobj=raw) if gz else raw) as fh:
                return _read_idx_stream(fh, path)
    except (OSError, EOFError, zlib.error) as exc:   # gzip.BadGzipFile is an OSError
        raise GankitError(f"{path}: cannot read the IDX file ({exc}); it is damaged or truncated") from None


def _read_idx_stream(fh, path: Path) -> np.ndarray:
    head = fh.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
        raise GankitError(f"{path}: not an IDX file (bad magic number)")
    ndim = head[3]
    dims_raw = fh.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise GankitError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", dims_raw)
    dtype = np.dtype(_IDX_DTYPES[head[2]])
    expected = int(np.prod(dims, dtype=np.float64)) * dtype.itemsize
    check_fits_in_memory(expected, f"{path} (its header declares {'×'.join(map(str, dims))} values)")
    data = bytearray()
    while len(data) < expected:
        chunk = fh.read(min(1 << 24, expected - len(data)))
        if not chunk:
            break
        data += chunk
    extra = len(fh.read(1))
    if len(data) != expected or extra:
        held = f"{len(data)}" if not extra else f"more than {expected}"
        raise GankitError(f"{path}: truncated or padded IDX file: header says {dims} "
                          f"({expected} bytes of data), the file holds {held}")
    return np.frombuffer(bytes(data), dtype=dtype).reshape(dims)


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write a uint8 array as IDX (gzipped when the name ends in .gz). Used by tests and caches."""
    path = Path(path)
    a = np.ascontiguousarray(array, dtype=np.uint8)
    data = struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


def load_idx_dir(directory: str | Path, split: str = "train") -> np.ndarray:
    """The images of an MNIST-style folder: ``{train,t10k}-images-idx3-ubyte[.gz]``."""
    d = Path(directory)
    if not d.is_dir():
        raise GankitError(f"IDX folder {str(d)!r} does not exist or is not a folder")
    stem = {"train": "train", "test": "t10k"}[split]
    for name in (f"{stem}-images-idx3-ubyte.gz", f"{stem}-images-idx3-ubyte", f"{stem}-images.idx3-ubyte"):
        if (d / name).is_file():
            images = read_idx(d / name)
            break
    else:
        raise GankitError(f"{d}: no {stem}-images-idx3-ubyte[.gz] file in this folder")
    if images.ndim != 3 or images.dtype != np.uint8:
        raise GankitError(f"{d / name}: expected uint8 images [N, H, W], got {images.dtype} {images.shape}")
    return images[:, None]


# ----------------------------------------------------------------------------- arrays
def to_nchw_uint8(a: np.ndarray, source: str) -> np.ndarray:
    """Validate an image array and bring it to uint8 [N, C, H, W].

    Accepts [N, H, W], [N, H, W, C] and [N, C, H, W] with C in {1, 3}; uint8 (0..255) or
    float in [0, 1] (rounded to 256 levels).
    """
    if a.dtype.kind not in "uif":
        raise GankitError(f"{source}: images must be uint8 or float, got dtype {a.dtype}")
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4:
        if a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3):
            a = a.transpose(0, 3, 1, 2)
        elif a.shape[1] not in (1, 3):
            raise GankitError(f"{source}: cannot find a channel axis of size 1 or 3 in shape {a.shape}")
    else:
        raise GankitError(f"{source}: images must have rank 3 (N,H,W) or 4 (N,H,W,C / N,C,H,W), "
                          f"got shape {a.shape}")
    if a.shape[0] == 0:
        raise GankitError(f"{source}: the array holds no images")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise GankitError(f"{source}: the array contains NaN or Inf")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:
            raise GankitError(f"{source}: float images must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]")
        a = np.rint(a * 255)
    elif a.dtype != np.uint8:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise GankitError(f"{source}: integer images must lie in 0..255, found {lo}..{hi}")
    return np.ascontiguousarray(a.astype(np.uint8))


def load_array(path: str | Path) -> np.ndarray:
    """Images from ``.npy`` or ``.npz`` (the key ``images``, ``x``, ``arr_0``, or the only one).

    The array's header is read and checked against the bytes the file holds, and against
    the memory available, before the data are loaded."""
    return to_nchw_uint8(np.asarray(read_array_file(path, ("images", "x", "arr_0"))), str(path))


def read_array_file(path: str | Path, keys: tuple[str, ...]) -> np.ndarray:
    """The array of a ``.npy`` file, or of an ``.npz`` file's member named by the first of
    ``keys`` it holds (or its only member), its header checked before the data are read."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"array file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as fh:
            zipped = fh.read(4) == b"PK\x03\x04"
        if zipped:
            return _load_npz_member(path, keys)
        with open(path, "rb") as fh:
            return _read_npy(fh, path.stat().st_size, str(path))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise GankitError(f"{path}: not a readable .npy/.npz file ({str(exc).splitlines()[0]})") from None


def _read_npy(fh, size: int, source: str) -> np.ndarray:
    """A .npy array from ``fh``, after checking that the ``size`` bytes of the file hold
    what its header declares, and that this fits in memory."""
    version = np.lib.format.read_magic(fh)
    reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in reader:
        raise ValueError(f"unsupported .npy version {version}")
    shape, fortran, dtype = reader[version](fh)
    if dtype.hasobject:
        raise GankitError(f"{source}: the array holds Python objects, which gankit does not load; save numbers")
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    held = size - fh.tell()
    if nbytes != held:
        raise GankitError(f"{source}: the header declares {'×'.join(map(str, shape))} {dtype} values "
                          f"({nbytes:,} bytes), the file holds {held:,}; it is truncated or damaged")
    check_fits_in_memory(nbytes, source)
    data = fh.read(nbytes)
    if len(data) != nbytes:
        raise ValueError(f"the file ends after {len(data)} of {nbytes} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _load_npz_member(path: Path, wanted: tuple[str, ...]) -> np.ndarray:
    with zipfile.ZipFile(path) as z:
        keys = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
        key = next((k for k in wanted if k in keys), keys[0] if len(keys) == 1 else None)
        if key is None:
            raise GankitError(f"{path}: several arrays ({', '.join(keys) or 'none'}) and none named "
                              f"{', '.join(wanted[:-1])} or {wanted[-1]}")
        info = z.getinfo(key + ".npy")
        with z.open(info) as fh:
            return _read_npy(fh, info.file_size, f"{path} [{key}]")


# ----------------------------------------------------------------------------- folders
def fit_image(img, size: int, policy: str):
    from PIL import Image

    if policy == "resize":
        return img.resize((size, size), Image.BICUBIC)
    if policy == "center-crop":
        w, h = img.size
        s = size / min(w, h)
        img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        return img.crop((left, top, left + size, top + size))
    return img


def to_8bit(im):
    """16- and 32-bit grayscale images scaled to 8 bits (Pillow's own conversion clips them
    at 255): 16-bit values v become round(v / 257), so 65535 -> 255."""
    from PIL import Image

    if im.mode not in ("I;16", "I;16B", "I;16L", "I"):
        return im
    a = np.asarray(im, dtype=np.float64)
    peak = float(a.max(initial=0))
    if im.mode == "I" and peak <= 255:   # 32-bit container, 8-bit values
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    top = 65535.0 if im.mode.startswith("I;16") or peak <= 65535 else peak
    return Image.fromarray(np.rint(np.clip(a, 0, top) * (255.0 / top)).astype(np.uint8), "L")


def load_folder(directory: str | Path, size: int = 0, policy: str = "none", channels: int = 0) -> np.ndarray:
    """All PNG/JPEG/BMP files under ``directory`` (recursively), sorted by path.

    ``channels``: 1 (grayscale), 3 (RGB) or 0 (RGB if any image has colour, else grayscale).
    ``policy``: ``none`` (all images must already share one size), ``resize`` (to size×size,
    ignoring aspect) or ``center-crop`` (shorter side to ``size``, then the centre square).
    """
    from PIL import Image, UnidentifiedImageError

    d = Path(directory)
    if not d.is_dir():
        raise GankitError(f"image folder {str(d)!r} does not exist or is not a folder")
    if policy not in RESIZE_POLICIES:
        raise GankitError(f"resize policy must be one of {', '.join(RESIZE_POLICIES)}, got {policy!r}")
    if policy != "none" and size <= 0:
        raise GankitError(f"resize policy {policy!r} needs a target size (--image-size)")
    files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise GankitError(f"image folder {str(d)!r} holds no PNG, JPEG or BMP files")
    if size:
        check_fits_in_memory(len(files) * 3 * size * size, str(d))
    images = []
    colour = False
    for f in files:
        try:
            with warnings.catch_warnings(), Image.open(f) as im:
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im.load()
                mode = "RGB" if im.mode not in ("L", "1", "I", "I;16", "I;16B", "I;16L", "F", "LA") else "L"
                colour |= mode == "RGB"
                images.append(fit_image(to_8bit(im).convert(mode), size, policy))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise GankitError(f"{f}: the image declares more pixels than gankit reads "
                              f"({str(exc).split('(')[0].strip()}); remove it or shrink it") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise GankitError(f"{f}: not a readable image ({str(exc).splitlines()[0] or type(exc).__name__}); "
                              "remove or replace it") from None
    mode = {1: "L", 3: "RGB"}.get(channels, "RGB" if colour else "L")
    sizes = {im.size for im in images}
    if len(sizes) > 1:
        raise GankitError(f"{d}: images of {len(sizes)} different sizes (e.g. {sorted(sizes)[:3]}); choose a "
                          "resize policy (--resize resize or --resize center-crop) and --image-size")
    arr = np.stack([np.asarray(im.convert(mode), dtype=np.uint8) for im in images])
    return to_nchw_uint8(arr, str(d))


# ----------------------------------------------------------------------------- CIFAR-10
class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: CIFAR batches and the MNIST pickle
    are pickles, and an unrestricted unpickler would run whatever code a file names."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("builtins", "bytes"),
               ("_codecs", "encode"),  # how protocol-2 pickles spell bytes
               # protocol 5: numpy rebuilds an array from a buffer of bytes
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def safe_unpickle(data: bytes, source: str):
    try:
        return _ArrayOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any failure means a bad file
        raise GankitError(f"{source}: not a readable pickle of arrays ({exc})") from None


def cifar10_batches(directory: str | Path, split: str = "train") -> tuple[Path, list[tuple[Path, dict]]]:
    """The folder holding a split's CIFAR-10 python batches (``data_batch_1..5`` or
    ``test_batch``), and each batch file with its safely unpickled contents."""
    d = Path(directory)
    if (d / "cifar-10-batches-py").is_dir():
        d = d / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    found = [d / n for n in names if (d / n).is_file()]
    if not found:
        raise GankitError(f"{d}: no CIFAR-10 python batches ({names[0]} ...) in this folder")
    return d, [(f, safe_unpickle(f.read_bytes(), str(f))) for f in found]


def load_cifar10(directory: str | Path, split: str = "train") -> np.ndarray:
    """CIFAR-10 python batches (``data_batch_1..5`` or ``test_batch``) as uint8 [N, 3, 32, 32]."""
    d, batches = cifar10_batches(directory, split)
    parts = []
    for f, batch in batches:
        data = batch.get(b"data") if isinstance(batch, dict) else None
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
            raise GankitError(f"{f}: not a CIFAR-10 batch (expected 'data' of shape [N, 3072])")
        parts.append(data.reshape(-1, 3, 32, 32))
    return to_nchw_uint8(np.concatenate(parts), str(d))
