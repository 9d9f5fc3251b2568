"""Conditional GANs (--conditional): labels read and refused, labels travelling with their
images, the conditional models, exact resume, sampling a class, conditional accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import Config, objectives, train
from gankit.cli import main
from gankit.data import make_source
from gankit.data.labels import check_labels, folder_classes
from gankit.errors import GankitError
from gankit.evaluate import Scorer
from gankit.models import build_models
from gankit.models.conditional import (
    ChannelConcatDiscriminator,
    ClassBatchNorm2d,
    ConditionalGenerator,
    DeepConcatDiscriminator,
    ProjectionDiscriminator,
)
from gankit.runs import Run
from gankit.training.checkpoint import latest_checkpoint, load_checkpoint


def _labelled_squares(n=96, classes=3, seed=0):
    """Images whose class is written in them: class c has its bright square in column band c."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.uint8)
    y = np.arange(n) % classes
    for i in range(n):
        r, c = rng.integers(0, 20), 2 + 8 * y[i]
        x[i, r:r + 8, c:c + 6] = 255
    return x, y


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    d = tmp_path_factory.mktemp("cond")
    x, y = _labelled_squares()
    np.savez(d / "sq.npz", images=x, y=y)
    return d / "sq.npz"


def _dcgan_args(data, out, *extra):
    return ["train", "--data", f"npz:{data}", "--conditional", "--out", str(out), "--model", "dcgan", "--width", "8",
            "--z-dim", "8", "--batch-size", "16", "--steps", "8", "--checkpoint-every", "4", "--eval-every", "4",
            "--quiet", *extra]


@pytest.mark.parametrize("y, says", [
    (np.array([0, 1, 2, -1]), "label -1 is out of range"),
    (np.array([0, 1, 2]), "3 labels for 4 examples"),
    (np.array([0.0, 1.5, 1.0, 0.0]), "label 1 is 1.5, not a whole number"),
    (np.array([0, 2, 2, 0]), "class 1 has no examples"),
    (np.array([0, 0, 0, 0]), "at least two"),
    (np.array(["a", "b", "a", "b"]), "not integers"),
    (np.zeros((4, 2), int), "one integer per example"),
])
def test_bad_labels_end_in_one_line_and_write_nothing(tmp_path, capsys, y, says):
    with pytest.raises(GankitError, match=says):
        check_labels(y, 4, "t")
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 28, 28), np.uint8), y=y)
    capsys.readouterr()
    assert main(["train", "--data", f"npz:{tmp_path / 'd.npz'}", "--conditional", "--batch-size", "2",
                 "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("gankit: error: ") and says in err, err
    assert not (tmp_path / "r").exists()


def test_data_without_labels_is_refused(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((8, 28, 28), np.uint8))
    for data, says in [(f"npz:{tmp_path / 'x.npy'}", "an .npz holding the images and a y"),
                       ("gaussian1d", "one Gaussian"), ("fake:1,28,28", "has no class labels")]:
        capsys.readouterr()
        assert main(["train", "--data", data, "--conditional", "--batch-size", "2", "--out", str(tmp_path / "r"),
                     "--quiet"]) == 2
        err = capsys.readouterr().err
        assert says in err, err
    assert main(["train", "--conditional", "--pack", "2", "--out", str(tmp_path / "p"), "--quiet"]) == 2
    assert main(["train", "--conditional", "--model", "mnist-paper", "--data", f"npz:{tmp_path / 'x.npy'}",
                 "--out", str(tmp_path / "q"), "--quiet"]) == 2


def test_folder_classes_are_its_subfolders(tmp_path):
    for name, v in (("cats", 10), ("dogs", 200), ("ants", 90)):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(np.full((8, 8), v + i, np.uint8)).save(tmp_path / name / f"{i}.png")
    y, names = folder_classes(tmp_path)
    assert names == ["ants", "cats", "dogs"] and y.tolist() == [0, 0, 1, 1, 2, 2]
    src = make_source(Config(data=f"folder:{tmp_path}", conditional=True), torch.device("cpu"))
    # each image's label is its folder's: the pixel values tell the folders apart
    for img, label in zip(src.data[:, 0, 0, 0].tolist(), src.labels.tolist()):
        assert {0: (90, 91), 1: (10, 11), 2: (200, 201)}[label][0] <= img <= {0: 91, 1: 11, 2: 201}[label]
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "loose.png")
    with pytest.raises(GankitError, match="one subfolder per class"):
        folder_classes(tmp_path)


def test_labels_travel_with_their_images(squares):
    """Every batch D sees pairs each image with its own label (the square's column band)."""
    cfg = Config(data=f"npz:{squares}", conditional=True, model="dcgan", width=8, z_dim=8, batch_size=16, steps=1)
    src = make_source(cfg, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    for _ in range(8):   # more than an epoch: the order is reshuffled and labels follow
        x, y = src.next_labeled(16, g)
        band = ((x[:, 0] > 0).float().sum(1).argmax(1) - 2) // 8   # the column where the square is
        assert torch.equal(band, y)


def test_conditional_models_compute_what_they_claim():
    torch.manual_seed(0)
    cfg = Config(model="dcgan", width=8, z_dim=8)
    G, D = build_models(cfg, (1, 28, 28), num_classes=3)
    assert isinstance(G, ConditionalGenerator) and isinstance(D, ChannelConcatDiscriminator)
    z, y = torch.randn(6, 8), torch.tensor([2, 0, 1, 1, 0, 2])
    G.eval()
    # G(z, y) is the base G on [z, e(y)]; G(z) takes the classes in turn.
    torch.testing.assert_close(G(z, y), G.base(torch.cat([z, G.embed(y)], 1)), rtol=0, atol=0)
    torch.testing.assert_close(G(z), G(z, torch.arange(6) % 3), rtol=0, atol=0)
    # concat: D(x, y) = D0 on the image and 3 maps, map c all ones for class c
    x = torch.randn(6, 1, 28, 28)
    maps = torch.zeros(6, 3, 28, 28)
    maps[torch.arange(6), y] = 1
    torch.testing.assert_close(D(x, y), D.base(torch.cat([x, maps], 1)), rtol=0, atol=0)
    # projection: D(x, y) = psi(h(x)) + e(y) . sum over positions of h(x)
    _, P = build_models(cfg.replace(class_input="projection"), (1, 28, 28), num_classes=3)
    assert isinstance(P, ProjectionDiscriminator)
    h = P.base.net[:-1](x)
    want = P.base.net[-1](h).flatten() + (P.embed(y) * h.sum(dim=(2, 3))).sum(1)
    torch.testing.assert_close(P(x, y), want, rtol=1e-6, atol=1e-6)
    # the MLP joins the embedding to G's noise and to D's input
    Gm, Dm = build_models(Config(), (2,), num_classes=8)
    p = torch.randn(5, 2)
    yy = torch.tensor([0, 7, 3, 3, 1])
    torch.testing.assert_close(Dm(p, yy), Dm.base(torch.cat([p, Dm.embed(yy)], 1)), rtol=0, atol=0)
    assert Gm(torch.randn(5, 8), yy).shape == (5, 2)


def test_class_at_every_layer_computes_what_it_claims():
    """--class-input deep: the one-hot maps joined to every convolution's input, by hand;
    --g-class-input batchnorm: gamma[y] * BN(h) + beta[y] at each of G's BatchNorms, by hand."""
    torch.manual_seed(0)
    cfg = Config(model="dcgan", width=8, z_dim=8, class_input="deep", g_class_input="batchnorm")
    G, D = build_models(cfg, (1, 28, 28), num_classes=3)
    assert isinstance(D, DeepConcatDiscriminator)
    x, y = torch.randn(6, 1, 28, 28), torch.tensor([2, 0, 1, 1, 0, 2])
    convs = [m for m in D.base.net if isinstance(m, torch.nn.Conv2d)]
    assert [c.in_channels for c in convs] == [1 + 3, 8 + 3]
    h = x
    for m in D.base.net:
        if isinstance(m, torch.nn.Conv2d):
            maps = torch.zeros(6, 3, *h.shape[2:])
            maps[torch.arange(6), y] = 1
            h = torch.cat([h, maps], 1)
        h = m(h)
    torch.testing.assert_close(D(x, y), h.flatten(), rtol=0, atol=0)
    # G: every BatchNorm is class-conditional; train mode normalises with the batch's statistics
    norms = [m for m in G.base.net if isinstance(m, ClassBatchNorm2d)]
    assert len(norms) == 2 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in G.base.net)
    with torch.no_grad():
        for m in norms:
            m.scale.weight.normal_(1.0, 0.5)
            m.shift.weight.normal_(0.0, 0.5)
    z = torch.randn(6, 8)
    h = torch.cat([z, G.embed(y)], 1)
    for m in G.base.net:
        if isinstance(m, ClassBatchNorm2d):
            mean, var = h.mean(dim=(0, 2, 3), keepdim=True), h.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
            h = (h - mean) / torch.sqrt(var + 1e-5) * m.scale.weight[y][:, :, None, None] \
                + m.shift.weight[y][:, :, None, None]
        else:
            h = m(h)
    torch.testing.assert_close(G(z, y), h, rtol=1e-5, atol=1e-5)
    # another class changes the output; the class tables are trained parameters
    assert not torch.allclose(G(z, (y + 1) % 3), G(z, y))
    assert {n for n, _ in G.named_parameters() if "scale" in n or "shift" in n}


@pytest.mark.parametrize("extra", [[], ["--r1", "0.1", "--reg-every", "2", "--ema-kimg", "0.05", "--augment",
                                         "translation", "--precision", "bf16"],
                                   ["--class-input", "deep", "--g-class-input", "batchnorm", "--ema-kimg", "0.05",
                                    "--spectral-norm"],
                                   ["--aux-classifier", "0.5", "--precision", "bf16"],
                                   ["--aux-classifier", "0.5", "--update", "simultaneous"]])
def test_conditional_resume_is_bitwise(squares, tmp_path, extra):
    assert main(_dcgan_args(squares, tmp_path / "full", *extra)) == 0
    half = _dcgan_args(squares, tmp_path / "split", *extra)
    half[half.index("--steps") + 1] = "4"
    assert main(half) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--steps", "8", "--quiet"]) == 0
    a, b = (load_checkpoint(latest_checkpoint(tmp_path / n)) for n in ("full", "split"))
    assert a["classes"] == b["classes"] == ["0", "1", "2"]
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


def test_toy_conditional_trains_and_samples_a_class(tmp_path, capsys):
    run = train(data="ring8", conditional=True, steps=600, hidden=64, out=tmp_path / "r", progress=False,
                eval_every=600, checkpoint_every=600)
    assert run.classes == [f"mode {i}" for i in range(8)]
    x = run.sample(400, seed=1, label=5)
    angle = torch.atan2(x[:, 1], x[:, 0]) % (2 * np.pi)
    near = ((angle - 5 * np.pi / 4).abs() < np.pi / 8).double().mean()
    assert near > 0.9, float(near)       # 600 steps: most samples of class 5 sit at mode 5
    # the command line: a class by name or index, a labelled .npy, refusals in one line
    assert main(["sample", str(tmp_path / "r"), "--class", "mode 2", "--n", "50",
                 "--out", str(tmp_path / "c.npy")]) == 0
    assert np.load(tmp_path / "c.labels.npy").tolist() == [2] * 50
    assert main(["sample", str(tmp_path / "r"), "--per-class", "3", "--out", str(tmp_path / "p.npy")]) == 0
    assert np.load(tmp_path / "p.labels.npy").tolist() == [c for c in range(8) for _ in range(3)]
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "r"), "--class", "12", "--out", str(tmp_path / "u.npy")]) == 2
    assert "unknown class '12'" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "r"), "--n", "800", "--json"]) == 0
    import json
    out = json.loads(capsys.readouterr().out)
    assert 0.5 < out["class_accuracy"] <= 1 and len(out["class_accuracy_per_class"]) == 8
    assert out["classes"] == run.classes
    assert main(["report", str(tmp_path / "r")]) == 0     # a row per class
    html = (tmp_path / "r" / "report.html").read_text()
    assert f"<td>conditional accuracy, class mode 5</td><td>–</td><td>{out['class_accuracy_per_class'][5]:.1%}</td>" \
        in html


def test_unconditional_run_has_no_classes(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "u"), "--steps", "2", "--hidden", "8", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "u"), "--class", "1", "--out", str(tmp_path / "s.npy")]) == 2
    assert "is not a conditional run" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "u"), "--metrics", "cacc"]) == 2
    assert "scores conditional runs" in capsys.readouterr().err


def test_image_per_class_grid_and_walk_within_a_class(squares, tmp_path):
    assert main(_dcgan_args(squares, tmp_path / "r")) == 0
    assert main(["sample", str(tmp_path / "r"), "--per-class", "4", "--out", str(tmp_path / "g.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "g.png")).shape == (3 * 30 + 2, 4 * 30 + 2)   # a row per class
    assert main(["sample", str(tmp_path / "r"), "--interpolate", "--class", "2", "--rows", "2", "--cols", "3",
                 "--out", str(tmp_path / "w.npy")]) == 0
    r = Run.open(tmp_path / "r").load()
    from gankit.sampling import interpolation_noise
    z = interpolation_noise(2, 3, 8, r.trained_config.noise, 0, spherical=True)
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "w.npy")), r.sample(6, z=z, label=2),
                               rtol=0, atol=0)


def test_class_accuracy_of_perfect_and_wrong_generators():
    class Modes(torch.nn.Module):   # puts class c exactly on mode (c + shift) of ring8
        num_classes, out_shape = 8, (2,)

        def __init__(self, shift):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.shift = shift

        def forward(self, z, y):
            a = (y + self.shift).double() * (2 * np.pi / 8)
            return torch.stack([a.cos(), a.sin()], 1).float() + 0 * self.w

    cfg = Config(data="ring8", conditional=True)
    s = Scorer(cfg, (2,), ["cacc", "cfid"], 8000)
    right = s.score(Modes(0))
    assert right["class_accuracy"] == 1.0
    wrong = s.score(Modes(1))
    assert wrong["class_accuracy"] == 0.0 and wrong["class_accuracy_per_class"] == [0.0] * 8
    # Per-class FID against the exact reference (std 0.01 about each mode): a point mass on
    # its own mode costs Tr(Σ) = 2σ² = 2e-4; on the next mode also |m_{c+1} - m_c|² = 4 sin²(π/8).
    for per in right["class_fid_per_class"]:
        assert 1.6e-4 < per < 2.4e-4, per            # ~1,000 reference draws per class: ±20 %
    shift = 4 * np.sin(np.pi / 8) ** 2
    for per in wrong["class_fid_per_class"]:
        assert abs(per - shift - 2e-4) < 0.01 * shift, per


def test_cifar10_labels_follow_their_images(tmp_path):
    """Two CIFAR-10 batches: labels concatenated in the same order as the images, with the
    CIFAR-10 class names; a batch without labels is refused in one line."""
    import pickle
    y = np.arange(20) % 10
    data = np.repeat(y[:, None] * 20, 3072, axis=1).astype(np.uint8)     # each image's value tells its class
    for i, part in enumerate((slice(0, 12), slice(12, 20)), start=1):
        (tmp_path / f"data_batch_{i}").write_bytes(pickle.dumps(
            {b"data": data[part], b"labels": [int(v) for v in y[part]]}, protocol=2))
    src = make_source(Config(data=f"cifar10:{tmp_path}", conditional=True), torch.device("cpu"))
    assert src.classes[:2] == ["airplane", "automobile"] and len(src.classes) == 10
    assert torch.equal(src.data[:, 0, 0, 0].long() // 20, src.labels)
    g = torch.Generator().manual_seed(0)
    x, labels = src.next_labeled(8, g)
    assert torch.equal(((x[:, 0, 0, 0] + 1) / 2 * 255).round().long() // 20, labels)
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps({b"data": data[12:]}, protocol=2))
    with pytest.raises(GankitError, match="no labels in this CIFAR-10 batch"):
        make_source(Config(data=f"cifar10:{tmp_path}", conditional=True), torch.device("cpu"))


def test_aux_classifier_computes_what_it_claims():
    """--aux-classifier: D(x, y) is the conditional D unchanged (and G and D start as without
    it); D(x, y, classes=True) adds C(x), D's architecture with K logits and no class input."""
    from gankit.models.conditional import AuxClassifier, AuxClassifierDiscriminator
    cfg = Config(model="dcgan", width=8, z_dim=8)
    torch.manual_seed(0)
    G0, D0 = build_models(cfg, (1, 28, 28), num_classes=3)
    torch.manual_seed(0)
    G, D = build_models(cfg.replace(aux_classifier=0.5), (1, 28, 28), num_classes=3)
    assert isinstance(D, AuxClassifierDiscriminator) and isinstance(D.classifier, AuxClassifier)
    for a, b in ((G0, G), (D0, D.D)):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb), ka
    x, y = torch.randn(6, 1, 28, 28), torch.tensor([2, 0, 1, 1, 0, 2])
    logits, class_logits = D(x, y, classes=True)
    torch.testing.assert_close(D(x, y), D.D(x, y), rtol=0, atol=0)
    torch.testing.assert_close(logits, D.D(x, y), rtol=0, atol=0)
    C = D.classifier
    assert C.body[0].in_channels == 1 and C.head.out_features == 3       # the image alone, K outputs
    h = C.body(x).permute(0, 2, 3, 1).reshape(6, -1)
    torch.testing.assert_close(class_logits, h @ C.head.weight.T + C.head.bias, rtol=1e-6, atol=1e-6)
    # the MLP's classifier takes flattened examples
    _, Dm = build_models(Config(aux_classifier=1.0), (2,), num_classes=8)
    p = torch.randn(5, 2)
    assert Dm(p, torch.tensor([0, 7, 3, 3, 1]), classes=True)[1].shape == (5, 8)
    torch.testing.assert_close(Dm.classifier(p), Dm.classifier.head(Dm.classifier.body(p)), rtol=0, atol=0)


def test_aux_classifier_losses_and_gradients():
    """D's gradient is that of L_D + λ·CE(C(x), y) on the real batch (C learns the data's
    labels only); G's that of L_G + λ·CE(C(G(z, y)), y), with C as fixed as D."""
    from gankit.training.loop import GANTrainer
    lam = 0.5
    torch.manual_seed(0)
    G, D = build_models(Config(z_dim=4, hidden=16, depth=2, aux_classifier=lam), (2,), num_classes=8)
    opt = lambda p: torch.optim.SGD(p, lr=0.0)  # noqa: E731  (parameters stay put: gradients can be recomputed)
    t = GANTrainer(G, D, opt(G.parameters()), opt(D.parameters()),
                   make_source(Config(data="ring8", conditional=True), torch.device("cpu")), "nonsaturating", 1, 8,
                   4, "normal", torch.Generator().manual_seed(1), torch.Generator().manual_seed(2),
                   class_probs=torch.full((8,), 1 / 8), aux_weight=lam)
    draws = {"data": [], "noise": []}
    nxt, nb = t.data.next_labeled, t.noise_batch
    t.data.next_labeled = lambda m, g: draws["data"].append(nxt(m, g)) or draws["data"][-1]
    t.noise_batch = lambda m: draws["noise"].append(nb(m)) or draws["noise"][-1]
    ce = torch.nn.functional.cross_entropy
    t.discriminator_step()
    (x, y), (z, yf) = draws["data"][0], draws["noise"][0]
    want = objectives.discriminator_loss(D(x, y), D(G(z, yf).detach(), yf)) + lam * ce(D.classifier(x), y)
    for got, w in zip([p.grad for p in D.parameters()], torch.autograd.grad(want, list(D.parameters()))):
        torch.testing.assert_close(got, w, rtol=1e-6, atol=1e-7)
    D.zero_grad(set_to_none=True)
    t.generator_step()
    z, yf = draws["noise"][1]
    fake = G(z, yf)
    want = objectives.generator_loss(D(fake, yf), "nonsaturating") + lam * ce(D.classifier(fake), yf)
    for got, w in zip([p.grad for p in G.parameters()], torch.autograd.grad(want, list(G.parameters()))):
        torch.testing.assert_close(got, w, rtol=1e-6, atol=1e-7)
    assert all(p.grad is None for p in D.parameters())       # C and D received no gradient from G's step
    stats = t.step().to_dict()
    assert stats["class_loss_d"] > 0 and stats["class_loss_g"] > 0


@pytest.mark.parametrize("argv", [["--class-input", "deep"], ["--g-class-input", "batchnorm"],
                                  ["--fake-labels", "uniform"]])
def test_conditional_options_need_conditional(tmp_path, capsys, argv):
    """An option of conditional GANs on an unconditional run is refused, not ignored."""
    assert main(["train", "--data", "ring8", *argv, "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "applies to conditional GANs (--conditional)" in err
    assert not (tmp_path / "r").exists()


def test_aux_classifier_needs_labels(tmp_path, capsys):
    assert main(["train", "--data", "ring8", "--aux-classifier", "1", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "aux_classifier needs a conditional GAN" in err
    assert not (tmp_path / "r").exists()
    assert main(["train", "--data", "ring8", "--conditional", "--aux-classifier", "-1", "--out", str(tmp_path / "r"),
                 "--quiet"]) == 2
    assert "aux_classifier must be a number >= 0" in capsys.readouterr().err
