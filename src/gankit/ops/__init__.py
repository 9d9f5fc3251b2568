"""Optional faster kernels, applied to a built model where they pay, and switchable.

``apply(model)`` turns the layers an op covers into its forms (same parameters, same
state-dict keys, so checkpoints do not notice); ``remove(model)`` turns them back into
torch's own layers. The run assembly applies them only on a CPU in bf16 with
``--cpu-kernels auto`` (:func:`wanted`), and records the choice in ``runtime.json`` and in
every checkpoint. Each op keeps a reference fallback (torch's kernel) and is tested
against float64 convolutions, single and double backward (``tests/ops/``).
"""

from __future__ import annotations

from torch import nn

from .conv_s2k4 import StridedConv2d, StridedConvTranspose2d

_FORMS = {nn.Conv2d: StridedConv2d, nn.ConvTranspose2d: StridedConvTranspose2d}


def covers(m: nn.Module) -> bool:
    """Whether an op has a form for this layer: a bias-free 4×4, stride-2, padding-1
    (transposed) convolution, ungrouped, zero-padded."""
    return (type(m) in _FORMS and m.bias is None and m.kernel_size == (4, 4) and m.stride == (2, 2)
            and m.padding == (1, 1) and m.dilation == (1, 1) and m.groups == 1 and m.padding_mode == "zeros"
            and getattr(m, "output_padding", (0, 0)) == (0, 0))


def wanted(setting: str, device_type: str, precision: str) -> bool:
    """``--cpu-kernels auto`` applies them where they were measured to pay: CPU and bf16."""
    return setting == "auto" and device_type == "cpu" and precision == "bf16"


def apply(model: nn.Module) -> int:
    """Give every covered layer of ``model`` its faster form, in place; how many were changed."""
    n = 0
    for m in model.modules():
        if covers(m):
            m.__class__ = _FORMS[type(m)]
            n += 1
    return n


def remove(model: nn.Module) -> nn.Module:
    """Turn the faster forms back into torch's own layers, in place."""
    back = {v: k for k, v in _FORMS.items()}
    for m in model.modules():
        if type(m) in back:
            m.__class__ = back[type(m)]
    return model


__all__ = ["apply", "remove", "wanted", "covers", "StridedConv2d", "StridedConvTranspose2d"]
