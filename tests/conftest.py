"""The suite runs on the CPU wherever it runs, the GPU path's own tests aside.

On a machine with a GPU, ``device: auto`` would put every training test on it: cuDNN's
autotuned kernels are not bitwise reproducible (the exact-resume tests), CPU thread counts
are not chosen there, and a 2-process torchrun test would put its second rank on a GPU
that is not there. So a test not marked ``gpu`` sees no CUDA: ``torch.cuda.is_available``
answers False in this process and ``CUDA_VISIBLE_DEVICES`` is empty for the processes it
starts. ``tests/training/test_cuda.py`` is marked ``gpu`` and sees the GPU."""

import pytest
import torch


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: a test of the CUDA path, which sees the GPU where there is one")


@pytest.fixture(autouse=True)
def _cpu_unless_gpu_test(request, monkeypatch):
    if request.node.get_closest_marker("gpu") is None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
