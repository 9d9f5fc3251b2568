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
from torch.nn.utils import parametrize

from .conv_s2k4 import StridedConv2d, StridedConvTranspose2d

_FORMS = {nn.Conv2d: StridedConv2d, nn.ConvTranspose2d: StridedConvTranspose2d}


def covers(m: nn.Module) -> bool:
    """Whether an op has a form for this layer: a bias-free 4×4, stride-2, padding-1
    (transposed) convolution, ungrouped, zero-padded; parametrized (spectral norm) or not."""
    return (parametrize.type_before_parametrizations(m) in _FORMS and m.bias is None and m.kernel_size == (4, 4)
            and m.stride == (2, 2) and m.padding == (1, 1) and m.dilation == (1, 1) and m.groups == 1
            and m.padding_mode == "zeros" and getattr(m, "output_padding", (0, 0)) == (0, 0))


def wanted(setting: str, device_type: str, precision: str) -> bool:
    """``--cpu-kernels auto`` applies them where they were measured to pay: CPU and bf16."""
    return setting == "auto" and device_type == "cpu" and precision == "bf16"


def apply(model: nn.Module) -> int:
    """Give every covered layer of ``model`` its faster form, in place; how many were changed."""
    n = 0
    for m in model.modules():
        if covers(m):
            _set_form(m, _FORMS[parametrize.type_before_parametrizations(m)])
            n += 1
    return n


def remove(model: nn.Module) -> nn.Module:
    """Turn the faster forms back into torch's own layers, in place."""
    back = {v: k for k, v in _FORMS.items()}
    for m in model.modules():
        form = parametrize.type_before_parametrizations(m)
        if form in back:
            _set_form(m, back[form])
    return model


def _set_form(m: nn.Module, form: type) -> None:
    """Make ``m`` an instance of ``form`` (a subclass of its layer type, or back). A layer
    with a parametrization (spectral norm) is an instance of a class that torch made for it,
    a subclass of the layer type that holds the parametrized ``weight`` property (shared by
    the module's deep copies): ``m`` gets its own copy of that class on ``form`` instead, so
    that the parametrization stays and the faster form's ``forward`` reads its weight."""
    if parametrize.is_parametrized(m):
        own = {k: v for k, v in vars(type(m)).items() if k not in ("__dict__", "__weakref__")}
        m.__class__ = type(f"Parametrized{form.__name__}", (form,), own)
    else:
        m.__class__ = form


__all__ = ["apply", "remove", "wanted", "covers", "StridedConv2d", "StridedConvTranspose2d"]
