"""Device, precision and thread policy: where and how a run computes.

Chosen once per run, before the models are built, and recorded in the run directory
(``runtime.json``) and in every checkpoint: a resumed run keeps its precision and thread
count, because both change how sums are rounded.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from ..config import Config
from ..errors import GankitError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GankitError(f"device {name!r} asked for, but this torch has no CUDA device; use --device cpu")
    return torch.device(name)


def cpu_times() -> tuple[int, int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat, and the ticks this
    process has used (user + system, all its threads), from /proc/self/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # /proc/self/stat: "pid (comm) state ..."; utime and stime are fields 14 and 15.
    own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return sum(fields[:8]) - idle, sum(fields[:8]), int(own[11]) + int(own[12])


def choose_threads(sample_s: float = 0.2) -> tuple[int, str | None]:
    """The thread count for a CPU run: torch's default (the cores it may use, or
    OMP_NUM_THREADS) less the cores that other processes keep busy now (this one's own
    threads excluded), at least 1; and a note when that is fewer than the default.

    Why: two busy processes on the same cores each running one thread per core slow each
    other 3-5× (the threads wait on each other at every parallel region): mnist-dcgan
    took 104-155 ms a step on 2 threads with one core busy, 58 ms on 1 thread, 32-37 ms
    on 2 threads alone. The count is chosen once per run and kept by its checkpoints,
    because it changes how convolutions sum (1e-3 apart after 10 steps on mnist-dcgan), so
    a run and its resumption stay bitwise reproducible; ``--threads N`` fixes it."""
    default = torch.get_num_threads()
    cpus = os.cpu_count() or default
    try:
        b0, t0, own0 = cpu_times()
        time.sleep(sample_s)
        b1, t1, own1 = cpu_times()
    except (OSError, ValueError, IndexError):
        return default, None  # no /proc/stat (not Linux): keep torch's choice
    # This process's own threads do not count: after a previous run or evaluation in the
    # same process, torch's idle worker threads spin for a while and would look like load.
    busy = cpus * max(0, (b1 - b0) - (own1 - own0)) / max(t1 - t0, 1)
    threads = max(1, min(default, int(cpus - busy + 0.5)))
    if threads < default:
        return threads, (f"{busy:.1f} of {cpus} cores busy with other work; training on {threads} "
                         f"thread{'s' if threads > 1 else ''} instead of {default} (--threads N to choose)")
    return threads, None


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AMX or AVX512-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(cfg: Config, device: torch.device, G: torch.nn.Module) -> str:
    """``auto``: bf16 on GPUs that have it (else fp16), and on CPUs with bf16 units for
    convolutional models and MLPs with a layer of 2^18 weights or more (measured faster
    there: DCGAN 1.2-1.4x, the paper's MNIST MLP 1.5x); small MLPs gain nothing and stay fp32."""
    if cfg.precision != "auto":
        if cfg.precision == "fp16" and device.type == "cpu" and not hasattr(torch.amp, "GradScaler"):
            raise GankitError("fp16 on the CPU needs a newer torch; use --precision bf16 or fp32")
        return cfg.precision
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32" if cfg.update == "simultaneous" else "fp16"  # simultaneous updates have no loss scaling
    heavy = any(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) or
                (isinstance(m, torch.nn.Linear) and m.weight.numel() >= 2**18) for m in G.modules())
    return "bf16" if heavy and cpu_has_bf16() else "fp32"


def apply_threads(cfg: Config, device: torch.device, saved_threads: int = 0) -> int:
    """Set torch's CPU thread count for this run: ``--threads`` if given, else the count a
    checkpoint saved (a resumed run sums as it did), else torch's default, the same on every
    run on this machine (reproducible: the thread count changes how convolutions sum), or
    with ``--share-cores`` the count :func:`choose_threads` leaves to other processes."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    elif device.type == "cpu":
        threads = int(saved_threads or 0)
        if not threads and cfg.share_cores:
            threads, note = choose_threads()
            if note:
                logging.getLogger("gankit").info(note)
        torch.set_num_threads(threads or torch.get_num_threads())
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return torch.get_num_threads()


def is_convolutional(module: torch.nn.Module) -> bool:
    return any(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in module.modules())


def memory_format(D: torch.nn.Module) -> torch.memory_format:
    """channels_last for convolutional models (oneDNN's and cuDNN's fast layout), else contiguous."""
    return torch.channels_last if is_convolutional(D) else torch.contiguous_format


def estimate_training_bytes(build, cfg: Config, shape: tuple) -> tuple[int, int]:
    """(parameters, bytes) a run of ``cfg`` needs, estimated without allocating: G and D are
    built on torch's "meta" device (shapes only) and run on one meta batch, and the bytes
    are 16 per parameter (weights, gradients, two Adam moments, in fp32) and 12 per
    activation value (kept for the backward pass and its gradient, in fp32), D counted on a
    real and a generated batch. (0, 0) when the model cannot run on the meta device."""
    values = [0]

    def count(module, inputs, output):
        if isinstance(output, torch.Tensor) and not list(module.children()):
            values[0] += output.numel()

    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            G, D = build(cfg, shape)
            hooks = [m.register_forward_hook(count) for net in (G, D) for m in net.modules()]
            with torch.no_grad():
                x = G(torch.zeros(cfg.batch_size, cfg.z_dim))
                D(x)
                D(x)
            for h in hooks:
                h.remove()
    except Exception:  # noqa: BLE001 - a model that cannot run on meta tensors: no estimate
        return 0, 0
    params = sum(p.numel() for net in (G, D) for p in net.parameters())
    return params, 16 * params + 12 * values[0]


def check_training_memory(build, cfg: Config, shape: tuple, device: torch.device) -> None:
    """Refuse, before allocating anything, a configuration whose models and batch would not
    fit in the memory of the device (``--batch-size``, ``--hidden`` or ``--width`` far too
    large)."""
    params, need = estimate_training_bytes(build, cfg, shape)
    if not need:
        return
    if device.type == "cuda":
        avail = torch.cuda.mem_get_info(device)[0]
    else:
        from ..data.images import available_memory
        avail = available_memory()
    if avail is not None and need > 0.9 * avail:
        raise GankitError(f"this configuration needs about {need / 2**30:,.1f} GiB ({params:,} parameters, batch "
                          f"{cfg.batch_size}) and {avail / 2**30:,.1f} GiB are available on {device.type}; lower "
                          "--batch-size, --hidden, --depth or --width")
