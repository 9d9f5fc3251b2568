"""`gankit bench`: its reference loop does the update it claims, and its report adds up."""

import copy
import math

import pytest
import torch
from torch import nn

from gankit.bench import Case, ReferenceLoop, matmul_ceiling, run_bench
from gankit.config import Config
from gankit.errors import GankitError


def test_ceiling_is_the_best_of_its_parts():
    c = matmul_ceiling(torch.float32, reps=1)
    assert set(c["parts"]) == {"matmul_1024", "conv1x1_1024", "matmul_2048", "conv1x1_2048", "conv3x3_256"}
    assert all(v > 0 and math.isfinite(v) for v in c["parts"].values())
    assert c["gflops"] == max(c["parts"].values())


def test_report_is_consistent():
    out = run_bench(cases=("mlp2d",), steps=2, rounds=1, min_round_s=0.0)
    (r,) = out["results"]
    assert r["case"] == "mlp2d" and r["batch"] == 256 and r["precision"] == "fp32" and r["device"] == "cpu"
    assert r["steps_per_round"] == 2 and len(r["gankit_s_per_step_by_round"]) == 1
    # ratio = reference time / gankit time = gankit ex/s / reference ex/s
    assert r["ratio"] == pytest.approx(r["gankit_examples_per_s"] / r["reference_examples_per_s"], rel=1e-9)
    assert r["gankit_gflops"] == pytest.approx(r["flops_per_step"] * r["gankit_examples_per_s"] / 256 / 1e9, rel=1e-9)
    assert r["gankit_share_of_ceiling"] == pytest.approx(r["gankit_gflops"] / r["matmul_ceiling_gflops"], rel=1e-9)
    # FLOPs of one ring8 iteration: the same networks in both loops, so within 1 % of each other
    assert r["reference_flops_per_step"] == pytest.approx(r["flops_per_step"], rel=0.01)
    assert {"machine", "versions", "command"} <= set(out)


def test_unknown_case_is_refused():
    with pytest.raises(GankitError, match="unknown bench case 'nope'"):
        run_bench(cases=("nope",))


def test_reference_simultaneous_update_matches_hand_computation():
    """With ``update: simultaneous`` the reference steps both networks from gradients taken at
    the same (pre-update) parameters: D from L_D, G from -log D(G(z)) (BCE with label 1)."""
    cfg = Config(data="ring8", update="simultaneous", optimizer="sgd", momentum=0.0, momentum_final=0.0,
                 lr_g=0.05, lr_d=0.02, batch_size=16, lr_schedule="constant")
    ref = ReferenceLoop(Case("mlp2d", cfg, None), workers=0)
    G0, D0 = copy.deepcopy(ref.G), copy.deepcopy(ref.D)
    gen = torch.Generator().manual_seed(3)
    x, z = torch.randn(16, 2, generator=gen), torch.randn(16, cfg.z_dim, generator=gen)
    ref.it = iter([(x, torch.zeros(16))])
    ref.noise = lambda b: z
    ref.run(1)

    bce = nn.BCELoss()
    out_real, out_fake = D0(x).view(-1), D0(G0(z)).view(-1)
    loss_d = bce(out_real, torch.ones(16)) + bce(out_fake, torch.zeros(16))
    loss_g = bce(out_fake, torch.ones(16))
    gd = torch.autograd.grad(loss_d, list(D0.parameters()), retain_graph=True)
    gg = torch.autograd.grad(loss_g, list(G0.parameters()))
    for p, p0, g in zip(ref.D.parameters(), D0.parameters(), gd):
        torch.testing.assert_close(p, p0 - 0.02 * g, rtol=1e-5, atol=1e-7)
    for p, p0, g in zip(ref.G.parameters(), G0.parameters(), gg):
        torch.testing.assert_close(p, p0 - 0.05 * g, rtol=1e-5, atol=1e-7)
    # and the step moved both networks (so the comparison above is not vacuous)
    assert any(not torch.equal(p, p0) for p, p0 in zip(ref.G.parameters(), G0.parameters()))
    assert any(not torch.equal(p, p0) for p, p0 in zip(ref.D.parameters(), D0.parameters()))


def test_reference_runs_torch_layers_and_gankit_its_own():
    """The reference is the PyTorch example: torch's own convolution modules in the
    example's form (G's first and D's last layer as convolutions), without gankit's CPU
    kernels; gankit's loop applies them as a run does (CPU, bf16)."""
    from gankit import ops
    from gankit.bench import GankitLoop
    from gankit.models.dcgan import LogitHead, NoiseProjection
    fast = (ops.StridedConv2d, ops.StridedConvTranspose2d, NoiseProjection, LogitHead)
    cfg = Config.from_dict({"data": "mnist", "model": "dcgan", "width": 8, "batch_size": 4})
    case = Case("tiny-dcgan", cfg, torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8).numpy())
    ref, ours = ReferenceLoop(case, 0), GankitLoop(case, precision="bf16")
    ref_modules = [*ref.G.modules(), *ref.D.modules()]
    assert not any(isinstance(m, fast) for m in ref_modules)
    assert sum(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in ref_modules) == 6
    ours_modules = [*ours.trainer.G.modules(), *ours.trainer.D.modules()]
    assert sum(isinstance(m, (ops.StridedConv2d, ops.StridedConvTranspose2d)) for m in ours_modules) == 4
    assert sum(isinstance(m, (NoiseProjection, LogitHead)) for m in ours_modules) == 2
    assert sum(p.numel() for p in ref.G.parameters()) == sum(p.numel() for p in ours.trainer.G.parameters())
    assert not any(isinstance(m, fast[:2]) for m in GankitLoop(case, precision="fp32").trainer.D.modules())


def test_reference_paper_model_uses_torch_dropout():
    """The paper's D in the reference draws its masks with ``nn.Dropout``, as a plain
    PyTorch model would; gankit's own keeps its faster mask (same p)."""
    from gankit.bench import GankitLoop
    from gankit.models.paper_mnist import Dropout
    cfg = Config.from_dict({"data": "mnist", "model": "mnist-paper", "batch_size": 4, "update": "simultaneous"})
    case = Case("tiny-paper", cfg, torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8).numpy())
    ref, ours = ReferenceLoop(case, 0), GankitLoop(case)
    ref_p = [m.p for m in ref.D.modules() if isinstance(m, nn.Dropout)]
    assert ref_p == pytest.approx([0.2, 0.5, 0.5], abs=1e-12)
    assert not any(isinstance(m, Dropout) for m in ref.D.modules())
    assert [m.p for m in ours.trainer.D.modules() if isinstance(m, Dropout)] == ref_p
    ref.run(2)  # and it trains


def test_mnist_dcgan_case_keeps_width_64_and_the_rest_of_the_preset(monkeypatch):
    """The preset became width 96; the bench case keeps the workload its ratios were taken on."""
    import numpy as np

    import gankit.data
    from gankit.bench import make_case
    from gankit.config import load_preset
    monkeypatch.setattr(gankit.data, "load_images", lambda *a, **k: (np.zeros((8, 1, 28, 28), np.uint8), None))
    case = make_case("mnist-dcgan")
    preset = load_preset("mnist-dcgan")
    assert preset["width"] == 96 and case.cfg.width == 64
    assert (case.cfg.lr_g, case.cfg.r1, case.cfg.batch_size) == (preset["lr_g"], preset["r1"], preset["batch_size"])
    assert case.epoch_images == 8
