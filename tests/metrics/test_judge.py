"""gankit's judge of classes: its augmentation, its training and cache, and the verdicts the
evaluation takes from it (conditional accuracy, class balance)."""

import numpy as np
import pytest
import torch

from gankit.config import Config
from gankit.data.images import write_idx
from gankit.errors import GankitError
from gankit.evaluate import Scorer
from gankit.metrics import judge as J


def _striped(n, seed):
    """Class c: a bright band over rows 12..15 and 2c+4 columns from column 3, on faint noise;
    28×28 uint8. The class is the band's length, which the judge's ±2-pixel shifts keep (a
    band's position would not: shifted, class c's would be class c±1's)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 12:16, 3:2 * c + 7] = 230
    return x, y.astype(np.uint8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    (d / "mnist").mkdir()
    for stem, n, seed in (("train", 1280, 0), ("t10k", 300, 1)):
        x, y = _striped(n, seed)
        write_idx(d / "mnist" / f"{stem}-images-idx3-ubyte", x)
        write_idx(d / "mnist" / f"{stem}-labels-idx1-ubyte", y)
    return d


def test_augment_shifts_with_zero_fill_and_flips():
    x = torch.arange(2 * 1 * 5 * 6, dtype=torch.float32).reshape(2, 1, 5, 6) + 1
    g = torch.Generator().manual_seed(3)
    out = J._augment(x, g, flip=False)
    g = torch.Generator().manual_seed(3)
    dy = torch.randint(0, 2 * J.SHIFT + 1, (2,), generator=g) - J.SHIFT
    dx = torch.randint(0, 2 * J.SHIFT + 1, (2,), generator=g) - J.SHIFT
    for i in range(2):   # out[r, c] = x[r + dy, c + dx], zero outside
        want = torch.zeros(5, 6)
        for r in range(5):
            for c in range(6):
                if 0 <= r + dy[i] < 5 and 0 <= c + dx[i] < 6:
                    want[r, c] = x[i, 0, r + dy[i], c + dx[i]]
        assert torch.equal(out[i, 0], want)
    flipped = J._augment(x, torch.Generator().manual_seed(3), flip=True)
    assert all(torch.equal(flipped[i], out[i]) or torch.equal(flipped[i], out[i].flip(2)) for i in range(2))


def test_judge_trains_caches_and_leaves_the_global_stream(data_dir, monkeypatch):
    before = torch.random.get_rng_state()
    judge = J.get_judge("mnist", str(data_dir))
    assert torch.equal(torch.random.get_rng_state(), before)
    path = J.judge_path("mnist", str(data_dir))
    assert path.is_file()
    assert 0.97 <= judge.accuracy <= 1.0   # the bands are separable; measured 1.0
    x, y = _striped(200, 7)
    pred = judge.predict(torch.from_numpy(x[:, None]).float() / 255)
    assert float((pred.numpy() == y).mean()) >= 0.97
    mtime = path.stat().st_mtime_ns
    import gankit.data
    real_load = gankit.data.load_images

    def no_training_images(spec, split="train", data_dir=None):
        assert split != "train", "a cached judge reads no training images"
        return real_load(spec, split, data_dir)
    monkeypatch.setattr(gankit.data, "load_images", no_training_images)
    again = J.get_judge("mnist", str(data_dir))   # from the cache: no training, same verdicts
    assert path.stat().st_mtime_ns == mtime and again.accuracy == judge.accuracy
    assert torch.equal(again.predict(torch.from_numpy(x[:, None]).float() / 255), pred)
    assert "judge" in judge.description and f"{judge.accuracy:.2%}" in judge.description


def test_cached_domain_classifier_reads_no_training_images(data_dir, monkeypatch):
    """The domain-FID classifier, like the judge, is rebuilt from its cache file alone."""
    from gankit.metrics.features import train_classifier
    first = train_classifier("mnist", str(data_dir), epochs=1)
    import gankit.data
    real_load = gankit.data.load_images

    def no_training_images(spec, split="train", data_dir=None):
        assert split != "train", "a cached classifier reads no training images"
        return real_load(spec, split, data_dir)
    monkeypatch.setattr(gankit.data, "load_images", no_training_images)
    again = train_classifier("mnist", str(data_dir), epochs=1)
    x = torch.from_numpy(_striped(50, 9)[0][:, None]).float() / 255
    with torch.no_grad():
        assert torch.equal(again.model.embed(x), first.model.embed(x))
    assert again.accuracy == first.accuracy


def test_judge_refuses_unlabelled_data():
    with pytest.raises(GankitError, match="labelled named data set"):
        J.get_judge("ring8")


class _BandG(torch.nn.Module):
    """A 'generator' that draws class c's band for classes in turn, except class 9 drawn as 0."""
    num_classes = 10
    out_shape = (1, 28, 28)

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))   # sampling reads G's device from it

    def forward(self, z, y=None):
        n = z.shape[0]
        y = torch.arange(n) % 10 if y is None else y
        g = torch.Generator().manual_seed(n)   # the training images' faint noise (0..39 of 255), in [-1, 1]
        x = torch.randint(0, 40, (n, 1, 28, 28), generator=g).float() / 127.5 - 1
        for i, c in enumerate(y.tolist()):
            c = 0 if c == 9 else c
            x[i, 0, 12:16, 3:2 * c + 7] = 0.8
        return x


def test_conditional_accuracy_and_class_shares_come_from_the_judge(data_dir):
    cfg = Config(data="mnist", data_dir=str(data_dir), conditional=True, model="dcgan", z_dim=4)
    s = Scorer(cfg, (1, 28, 28), ["cacc", "kid"], 200, extractor="raw")
    out = s.score(_BandG())
    assert out["class_accuracy"] == pytest.approx(0.9, abs=0.02)   # class 9 is always wrong
    assert out["class_accuracy_per_class"][9] <= 0.05
    assert out["class_shares"][9] <= 0.01 and out["class_shares"][0] == pytest.approx(0.2, abs=0.02)
    assert out["classes_present"] == 9
    assert "judge" in s.info["class_judge"]


@pytest.mark.parametrize("has_bf16", [True, False])
def test_judge_trains_in_bf16_only_where_the_cpu_has_bf16_units(has_bf16, monkeypatch):
    from gankit.training import runtime
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: has_bf16)
    model = J.JudgeNet(1, 8)
    seen = []
    model.net[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x = torch.randint(0, 256, (J.BATCH, 1, 8, 8), dtype=torch.uint8)
    y = torch.arange(J.BATCH) % 10
    J.fit_judge(model, x, y, torch.Generator().manual_seed(0), 1, flip=False)
    assert seen == [torch.bfloat16 if has_bf16 else torch.float32]   # one step, its first convolution
