"""Hostile inputs and faults, one test per kind: each ends in one line ``gankit: error: …``
and exit status 2 with nothing of the user's changed, or simply works.

The cases that could exhaust memory run in a subprocess under an address-space limit
(``RLIMIT_AS``), so that a regression fails the test instead of swapping the machine.
"""

import gzip
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.data.images import load_array, load_cifar10, load_folder, read_idx, write_idx
from gankit.errors import GankitError
from gankit.rundir import RunLock, atomic_write_bytes, list_checkpoints
from gankit.training.checkpoint import load_checkpoint, sidecar

AS_LIMIT = 6 * 2**30   # torch's import alone maps about 2 GiB of address space


def _one_line_error(capsys, argv, contains=""):
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (code, err)
    assert len(err.splitlines()) == 1 and err.startswith("gankit: error: "), err
    assert len(err) < 600, len(err)
    assert contains in err, err
    return err


def _limited(argv, cwd, limit=AS_LIMIT, timeout=180):
    """``gankit ARGV`` in a subprocess whose address space is capped at ``limit`` bytes."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (%d, %d)); "
            "from gankit.cli import main; sys.exit(main(%r))" % (limit, limit, list(argv)))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _assert_limited_refusal(p, contains):
    err = p.stderr.strip()
    assert p.returncode == 2, (p.returncode, err[-2000:])
    assert len(err.splitlines()) == 1 and err.startswith("gankit: error: ") and contains in err, err[-2000:]


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """A small trained ring8 run (20 steps, checkpoints at 10 and 20)."""
    run = tmp_path_factory.mktemp("runs") / "r"
    assert main(["train", "--out", str(run), "--steps", "20", "--checkpoint-every", "10", "--eval-every", "0",
                 "--lr-schedule", "constant", "--quiet"]) == 0
    return run


def _copy_run(run, dest):
    import shutil
    shutil.copytree(run, dest)
    return dest


# ---------------------------------------------------------------------- 1. memory
def test_memory_huge_sample_count_is_refused_or_streamed(ring_run, tmp_path):
    p = _limited(["sample", str(ring_run), "--n", "1000000000000", "--out", str(tmp_path / "s.npy")], tmp_path)
    _assert_limited_refusal(p, "GiB")
    assert not (tmp_path / "s.npy").exists()
    p = _limited(["sample", str(ring_run), "--n", "100000000", "--out", str(tmp_path / "s.png")], tmp_path)
    _assert_limited_refusal(p, "at most")
    # a count the disk holds is written in chunks, under the same address-space limit
    p = _limited(["sample", str(ring_run), "--n", "300000", "--out", str(tmp_path / "ok.npy")], tmp_path)
    assert p.returncode == 0, p.stderr
    assert np.load(tmp_path / "ok.npy", mmap_mode="r").shape == (300000, 2)


def test_memory_files_that_claim_more_than_they_hold(tmp_path):
    # an IDX .gz of a few KB that inflates to gigabytes: refused against its header's bound
    bomb = tmp_path / "bomb" / "train-images-idx3-ubyte.gz"
    bomb.parent.mkdir()
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [z.compress(struct.pack(">BBBB3I", 0, 0, 8, 3, 10, 28, 28))]
    zeros = bytes(1 << 20)
    parts += [z.compress(zeros) for _ in range(256)]      # 256 MiB of zeros after a 7,840-byte image set
    bomb.write_bytes(b"".join(parts) + z.flush())
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(GankitError, match="padded"):
        read_idx(bomb)
    # a header that claims a terabyte
    liar = tmp_path / "liar.idx"
    liar.write_bytes(struct.pack(">BBBB3I", 0, 0, 8, 3, 1_000_000, 1000, 1000) + bytes(100))
    with pytest.raises(GankitError, match="GiB"):
        read_idx(liar)
    # .npy and .npz headers that claim more than the file holds
    npy = tmp_path / "liar.npy"
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 1000, 1000)})
    npy.write_bytes(buf.getvalue() + bytes(64))
    with pytest.raises(GankitError, match="header declares"):
        load_array(npy)
    npz = tmp_path / "liar.npz"
    with zipfile.ZipFile(npz, "w") as zf:
        zf.writestr("images.npy", buf.getvalue() + bytes(64))
    with pytest.raises(GankitError, match="header declares"):
        load_array(npz)


def test_memory_bombs_under_an_address_space_limit(tmp_path):
    """The same files through the command line, under RLIMIT_AS: refused, not swapped."""
    liar = tmp_path / "idx"
    liar.mkdir()
    (liar / "train-images-idx3-ubyte").write_bytes(struct.pack(">BBBB3I", 0, 0, 8, 3, 10**9, 28, 28) + bytes(10))
    p = _limited(["train", "--data", f"idx:{liar}", "--model", "dcgan", "--out", str(tmp_path / "r")], tmp_path)
    _assert_limited_refusal(p, "GiB")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flags", [["--batch-size", "1000000000"], ["--hidden", "1000000"],
                                   ["--model", "dcgan", "--data", "fake:3,64,64", "--width", "100000"]])
def test_memory_model_or_batch_beyond_memory_is_refused_before_allocating(tmp_path, flags):
    p = _limited(["train", "--out", str(tmp_path / "r"), *flags], tmp_path)
    _assert_limited_refusal(p, "GiB")
    assert not (tmp_path / "r").exists()


def test_memory_yaml_aliases_and_huge_values_stay_short(tmp_path, capsys):
    """A value built from nested aliases (9 × 8^9 leaves if expanded), a 200,000-character
    value and 60,000 unknown keys: each a short one-line error, quickly."""
    nested = ["&a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefghi", "bcdefghij"):
        nested.append(f"&{name} [" + ", ".join([f"*{prev}"] * 8) + "]")
    cases = {"laughs.yaml": ("z_dim: [" + ", ".join(nested) + "]\n", "z_dim"),
             "big.yaml": ("z_dim: '" + "9" * 200_000 + "'\n", "z_dim"),
             "keys.yaml": ("".join(f"k{i}: 1\n" for i in range(60_000)), "and 59,992 more")}
    for name, (text, contains) in cases.items():
        (tmp_path / name).write_text(text)
        t = time.perf_counter()
        _one_line_error(capsys, ["train", "--config", str(tmp_path / name)], contains)
        assert time.perf_counter() - t < 20, name


def test_memory_checkpoint_that_is_not_a_regular_file(ring_run, tmp_path, capsys):
    run = _copy_run(ring_run, tmp_path / "r")
    newest = list_checkpoints(run)[-1]
    newest.unlink()
    os.symlink("/dev/zero", newest)
    with pytest.raises(GankitError, match="not a regular file"):
        load_checkpoint(newest)
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "10", "--out", str(tmp_path / "s.npy")]) == 0
    err = capsys.readouterr().err
    assert "not a regular file" in err and len(err.strip().splitlines()) == 1


def test_memory_decompression_bomb_png(tmp_path):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "bomb.png").write_bytes(png)
    with pytest.raises(GankitError, match="more pixels than gankit reads"):
        load_folder(tmp_path / "imgs")


# ---------------------------------------------------------------------- 2. damaged or edited files
def test_damaged_idx_deflate_stream(tmp_path):
    good = tmp_path / "x.gz"
    write_idx(good, np.zeros((4, 28, 28), np.uint8))
    raw = bytearray(good.read_bytes())
    raw[20:40] = b"\xff" * 20
    good.write_bytes(bytes(raw))
    with pytest.raises(GankitError, match="damaged or truncated"):
        read_idx(good)


def test_damaged_checkpoint_with_valid_checksum_but_missing_fields(ring_run, tmp_path, capsys):
    run = _copy_run(ring_run, tmp_path / "r")
    newest = list_checkpoints(run)[-1]
    payload = torch.load(newest, weights_only=True)
    del payload["opt_g"], payload["rng"]
    buf = io.BytesIO()
    torch.save(payload, buf)
    newest.write_bytes(buf.getvalue())
    import hashlib
    sidecar(newest).write_text(f"{hashlib.sha256(buf.getvalue()).hexdigest()}  {newest.name}\n")
    with pytest.raises(GankitError, match="missing opt_g, rng"):
        load_checkpoint(newest)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "25", "--quiet"]) == 0   # falls back to step 10
    assert "missing" in capsys.readouterr().err


def test_edited_config_yaml_the_checkpoint_is_the_truth(ring_run, tmp_path, capsys):
    run = _copy_run(ring_run, tmp_path / "r")
    text = (run / "config.yaml").read_text()
    assert "z_dim: 2\n" in text and "hidden: 256\n" in text        # ring8's own noise, the default MLP
    (run / "config.yaml").write_text(text.replace("z_dim: 2\n", "z_dim: 17\n").replace("hidden: 256", "hidden: 32"))
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "10", "--out", str(tmp_path / "s.npy")]) == 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "z_dim" in err and "hidden" in err, err
    assert main(["eval", str(run), "--n", "100"]) == 0
    assert main(["train", "--resume", str(run), "--steps", "30", "--quiet"]) == 0
    assert "z_dim: 2\n" in (run / "config.yaml").read_text()    # the resumed run rewrote the truth


def test_metrics_row_missing_keys_and_non_utf8_output_path(ring_run, tmp_path, capsys):
    run = _copy_run(ring_run, tmp_path / "r")
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 21, "modes": 3}) + "\n" + json.dumps({"weird": "x"}) + "\n")
    assert main(["info", str(run)]) == 0
    assert "modes 3" in capsys.readouterr().out
    odd = os.fsdecode(os.fsencode(tmp_path) + b"/\xff\xfe.npy")
    assert main(["sample", str(run), "--n", "5", "--out", odd]) == 0
    assert Path(odd).exists() and "udcff" in capsys.readouterr().out


# ---------------------------------------------------------------------- 3. integrity
def test_two_trainings_into_one_directory(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    held = RunLock(out).acquire()          # another gankit process training here
    try:
        _one_line_error(capsys, ["train", "--out", str(out), "--steps", "5", "--quiet"], "in use by another")
    finally:
        held.release()
    assert [p.name for p in out.iterdir()] == [".lock"]
    done = []

    def train_in_thread():
        done.append(main(["train", "--out", str(out), "--steps", "300", "--eval-every", "0", "--quiet"]))
    t = threading.Thread(target=train_in_thread)
    t.start()
    try:
        for _ in range(200):
            if (out / "config.yaml").exists():
                break
            time.sleep(0.05)
        _one_line_error(capsys, ["train", "--out", str(out), "--steps", "5", "--quiet"], "in use by another")
    finally:
        t.join()
    assert done == [0]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})   # one writer, no interleaving


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    (tmp_path / "imgs").mkdir()
    a = np.array([[0, 257, 32896, 65535]], dtype=np.uint16).repeat(4, 0)
    Image.fromarray(a).save(tmp_path / "imgs" / "x.png")       # Pillow reads it back as mode I;16
    got = load_folder(tmp_path / "imgs")[0, 0, 0]
    assert got.tolist() == [0, 1, 128, 255]


def test_everything_checkable_is_checked_before_the_run_directory_exists(tmp_path, capsys):
    np.save(tmp_path / "few.npy", np.zeros((10, 28, 28), np.uint8))
    out = tmp_path / "r"
    _one_line_error(capsys, ["train", "--data", f"npz:{tmp_path / 'few.npy'}", "--model", "dcgan",
                             "--batch-size", "64", "--out", str(out)], "fewer than one batch")
    assert not out.exists()


def test_resume_cannot_shorten_below_steps_done(ring_run, tmp_path, capsys):
    run = _copy_run(ring_run, tmp_path / "r")
    before = (run / "config.yaml").read_text()
    _one_line_error(capsys, ["train", "--resume", str(run), "--steps", "5"], "has done 20 already")
    assert (run / "config.yaml").read_text() == before


def test_run_stopped_before_its_first_checkpoint_says_how_to_proceed(tmp_path, capsys, monkeypatch):
    from gankit.training.loop import GANTrainer
    real_step = GANTrainer.step

    def poisoned(self, with_grad_norms=False):
        stats = real_step(self, with_grad_norms)
        stats.loss_d = stats.loss_d * float("nan")
        return stats
    monkeypatch.setattr(GANTrainer, "step", poisoned)
    out = tmp_path / "r"
    _one_line_error(capsys, ["train", "--out", str(out), "--steps", "50", "--log-every", "5", "--quiet"], "diverged")
    monkeypatch.undo()
    _one_line_error(capsys, ["train", "--out", str(out), "--steps", "5"], "before its first checkpoint")
    _one_line_error(capsys, ["train", "--resume", str(out)], "before its first checkpoint")


# ---------------------------------------------------------------------- 4. small things
def test_cifar10_batch_pickled_with_protocol_5(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    data = np.random.default_rng(0).integers(0, 256, (20, 3072), dtype=np.uint8)
    (d / "data_batch_1").write_bytes(pickle.dumps({b"data": data, b"labels": list(range(20))}, protocol=5))
    assert load_cifar10(tmp_path).shape == (20, 3, 32, 32)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo hacked",))
    (d / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}, protocol=5))
    with pytest.raises(GankitError, match="refusing to load"):
        load_cifar10(tmp_path)


def test_every_checkpoint_damaged_is_one_line(ring_run, tmp_path, capsys):
    run = _copy_run(ring_run, tmp_path / "r")
    for p in list_checkpoints(run):
        p.write_bytes(p.read_bytes()[:100])
    _one_line_error(capsys, ["sample", str(run), "--n", "5", "--out", str(tmp_path / "s.npy")], "all 2 are damaged")
    _one_line_error(capsys, ["train", "--resume", str(run)], "all 2 are damaged")


def test_os_errors_name_the_users_path(tmp_path, monkeypatch):
    target = tmp_path / "config.yaml"
    target.write_text("old")

    def full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(GankitError) as exc:
        atomic_write_bytes(target, b"new")
    msg = str(exc.value)
    assert "No space left on device" in msg and str(target) in msg and ".tmp" not in msg
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_forbidden_yaml_tag_is_named(tmp_path, capsys):
    cfg = tmp_path / "evil.yaml"
    cfg.write_text("steps: !!python/object/apply:os.system ['echo hacked']\n")
    _one_line_error(capsys, ["train", "--config", str(cfg)], "YAML tag gankit does not accept")


# ---------------------------------------------------------------------- 5. a loaded machine
def test_busy_machine_changes_neither_output_nor_results(tmp_path, capsys):
    """With another process keeping a core busy, a run prints what it prints on a quiet
    machine and trains to bitwise the same weights (the thread count no longer follows
    the load unless --share-cores asks for it)."""
    argv = ["--data", "fake:1,28,28", "--model", "dcgan", "--width", "8", "--batch-size", "16", "--steps", "6",
            "--eval-every", "0", "--z-dim", "16", "--quiet"]
    assert main(["train", "--out", str(tmp_path / "quiet"), *argv]) == 0
    quiet_err = capsys.readouterr().err
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert main(["train", "--out", str(tmp_path / "busy"), *argv]) == 0
        busy_err = capsys.readouterr().err
        _one_line_error(capsys, ["train", "--out", str(tmp_path / "busy"), *argv], "already holds a run")
    finally:
        busy.kill()
        busy.wait()
    assert busy_err == quiet_err == ""
    a = load_checkpoint(list_checkpoints(tmp_path / "quiet")[-1])
    b = load_checkpoint(list_checkpoints(tmp_path / "busy")[-1])
    assert a["threads"] == b["threads"]
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), k


def test_gzip_module_not_needed_for_plain_idx(tmp_path):
    """Plain (uncompressed) IDX files read through the same bounded path."""
    p = tmp_path / "x.idx"
    write_idx(p, np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28) % 251, compress=False)
    assert read_idx(p).shape == (2, 28, 28)
    assert gzip.decompress(gzip.compress(p.read_bytes())) == p.read_bytes()


def test_writing_onto_a_link_a_pipe_or_a_device_keeps_them(tmp_path):
    """An --out that is a symbolic link, a named pipe or a device: the atomic write (a
    temporary file renamed over the path) would replace the link, the pipe or the device
    node (as root, /dev/full became a file) with a regular file. A link's target is
    replaced and the link kept; a pipe is written in place; a full device is an error."""
    real, link = tmp_path / "real.html", tmp_path / "link.html"
    real.write_text("old")
    link.symlink_to(real)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.html", "real.html"]   # no temporary left

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    atomic_write_bytes(fifo, b"through the pipe")
    reader.join(timeout=30)
    assert got == [b"through the pipe"] and fifo.is_fifo()

    full = Path("/dev/full")
    if full.is_char_device():
        with pytest.raises(GankitError, match="cannot write '/dev/full': No space left on device"):
            atomic_write_bytes(full, b"x" * 10)
        assert full.is_char_device()


def test_output_to_stdout_holds_the_data_only(ring_run, tmp_path):
    """`--out /dev/stdout`: the file written is stdout itself, so the "wrote ..." line goes
    to stderr and stdout carries the report alone."""
    run = _copy_run(ring_run, tmp_path / "r")
    with open(tmp_path / "out.html", "wb") as out:
        p = subprocess.run([sys.executable, "-m", "gankit", "report", str(run), "--out", "/dev/stdout"],
                           stdout=out, stderr=subprocess.PIPE, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    html = (tmp_path / "out.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and html.rstrip().endswith("</html>")
    assert "wrote" not in html and "wrote /dev/stdout" in p.stderr
