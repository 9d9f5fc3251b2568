"""--dequantize: training pixels (k + u)/256 with u ~ U[0, 1) from the data stream."""

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.config import Config
from gankit.data import ImageSource, apply_data_options, make_source
from gankit.errors import GankitError
from gankit.training.checkpoint import list_checkpoints, load_checkpoint


def _source(k):
    src = ImageSource(np.full((64, 1, 4, 4), k, dtype=np.uint8), torch.device("cpu"))
    apply_data_options(src, Config(data="fake:1,4,4", dequantize=True))
    return src


@pytest.mark.parametrize("k", [0, 17, 255])
def test_each_level_becomes_a_uniform_interval(k):
    src = _source(k)
    g = torch.Generator().manual_seed(0)
    x = src.next(64, g)                                           # range [-1, 1]
    u = (x.double() + 1) / 2 * 256 - k                            # the added noise, in levels
    assert u.min() >= -1e-4 and u.max() < 1 + 1e-4                # within [k, k+1)/256 (fp32 rounding)
    assert abs(float(u.mean()) - 0.5) < 0.05                      # 1,024 draws: sd of the mean 0.009
    assert float(u.std()) == pytest.approx((1 / 12) ** 0.5, abs=0.02)
    assert not torch.equal(src.next(64, g), x)                    # a fresh draw each batch
    plain = ImageSource(np.full((4, 1, 4, 4), k, dtype=np.uint8), torch.device("cpu"))
    assert torch.equal(plain.next(4, torch.Generator()), torch.full((4, 1, 4, 4), k / 255 * 2 - 1))


def test_dequantize_refuses_what_is_not_8_bit_images():
    src = make_source(Config(data="ring8"), torch.device("cpu"))
    with pytest.raises(GankitError, match="8-bit images"):
        apply_data_options(src, Config(data="ring8", dequantize=True))


def test_dequantized_training_resumes_bitwise(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, (40, 1, 28, 28), dtype=np.uint8))
    plain = ["--data", f"npz:{tmp_path / 'd.npz'}", "--model", "dcgan", "--width", "8", "--z-dim", "8",
             "--batch-size", "8", "--eval-every", "0", "--checkpoint-every", "5", "--quiet"]
    common = [*plain, "--dequantize"]
    assert main(["train", "--out", str(tmp_path / "full"), "--steps", "10", *common]) == 0
    assert main(["train", "--out", str(tmp_path / "split"), "--steps", "5", *common]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "10", "--quiet"]) == 0
    assert main(["train", "--out", str(tmp_path / "plain"), "--steps", "10", *plain]) == 0
    a, b, c = (load_checkpoint(list_checkpoints(tmp_path / r)[-1]) for r in ("full", "split", "plain"))
    assert a["config"]["dequantize"] is True and c["config"]["dequantize"] is False
    for k in a["D"]:
        assert torch.equal(a["D"][k], b["D"][k]), k
    assert any(not torch.equal(a["D"][k], c["D"][k]) for k in a["D"])   # the noise reached D


def test_subset_trains_on_a_slice_with_its_labels(tmp_path):
    x = np.arange(50, dtype=np.uint8)[:, None, None, None].repeat(4, 2).repeat(4, 3)
    y = np.arange(50) % 5
    np.savez(tmp_path / "d.npz", x=x, y=y)
    cfg = Config(data=f"npz:{tmp_path / 'd.npz'}", subset="10:30", conditional=True)
    src = make_source(cfg, torch.device("cpu"))
    apply_data_options(src, cfg)
    assert len(src) == 20 and torch.equal(src.data[:, 0, 0, 0], torch.arange(10, 30, dtype=torch.uint8))
    assert torch.equal(src.labels, torch.arange(10, 30) % 5) and src.class_counts.tolist() == [4.0] * 5
    assert "examples 10:30" in src.origin
    for bad, msg in (("10:60", "reaches past the 50 images"), ("0:3", "no example of class '3'")):
        cfg = Config(data=f"npz:{tmp_path / 'd.npz'}", subset=bad, conditional=True)
        with pytest.raises(GankitError, match=msg):
            apply_data_options(make_source(cfg, torch.device("cpu")), cfg)
    for bad in ("5", "30:10", "a:b", "-1:5", 7):
        with pytest.raises(GankitError, match="subset must be"):
            Config(data="mnist", subset=bad).validate()
    with pytest.raises(GankitError, match="image data sets"):
        apply_data_options(make_source(Config(data="ring8"), torch.device("cpu")), Config(data="ring8", subset="0:5"))


def test_the_mean_image_follows_dequantisation():
    src = ImageSource(np.array([[[[0, 255]]], [[[10, 255]]]], dtype=np.uint8), torch.device("cpu"))
    assert torch.allclose(src.mean01(), torch.tensor([[[5 / 255, 1.0]]]))
    src.dequantize = True   # E[(k + u)/256] = (k + 1/2)/256
    assert torch.allclose(src.mean01(), torch.tensor([[[5.5 / 256, 255.5 / 256]]]))
