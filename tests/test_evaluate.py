"""gankit eval: what it scores, with which features, and what it refuses."""

import json

import numpy as np
import pytest

from gankit.cli import main
from gankit.errors import GankitError
from gankit.metrics.features import RawExtractor
from gankit.registries import parse_metric_list as parse_metrics
from gankit.runs import evaluate_run


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ev") / "ring"
    assert main(["train", "--out", str(out), "--steps", "200", "--hidden", "32", "--depth", "2",
                 "--batch-size", "64", "--eval-every", "0", "--quiet"]) == 0
    return out


def test_eval_toy_modes_and_raw_fid(toy_run, capsys):
    assert main(["eval", str(toy_run), "--json", "--n", "1000"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["step"] == 200 and r["n"] == 1000 and r["num_modes"] == 8
    assert 0 <= r["modes"] <= 8 and 0 <= r["high_quality"] <= 1 and r["fid"] >= 0
    assert r["fid_kind"] == "Fréchet distance on raw values"
    assert json.loads((toy_run / "eval.json").read_text())["fid"] == r["fid"]


def test_eval_json_is_stdout_alone_and_notices_go_to_stderr(tmp_path, capsys):
    out = tmp_path / "ema"
    assert main(["train", "--out", str(out), "--steps", "40", "--hidden", "16", "--depth", "2",
                 "--batch-size", "64", "--eval-every", "0", "--ema-kimg", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--json", "--n", "500"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["weights"] == "ema"          # the whole of stdout parses
    assert "gankit: using the EMA generator of step_000040.pt" in captured.err
    assert main(["eval", str(out), "--n", "500"]) == 0            # without --json: on stdout, as before
    assert "gankit: using the EMA generator" in capsys.readouterr().out


def test_eval_is_reproducible(toy_run):
    a = evaluate_run(toy_run, ["modes", "fid", "kid", "pr"], n=600, write=False)
    b = evaluate_run(toy_run, ["modes", "fid", "kid", "pr"], n=600, write=False)
    for k in ("modes", "high_quality", "fid", "kid", "precision", "recall"):
        assert a[k] == b[k]


def test_eval_refusals(toy_run, tmp_path, capsys):
    for argv, expect in ((["--metrics", "parzen"], "parzen is an image metric"),
                         (["--metrics", "inception_score"], "unknown metric"),
                         (["--n", "1"], "at least 2")):
        assert main(["eval", str(toy_run), *argv]) == 2
        err = capsys.readouterr().err
        assert expect in err and len(err.strip().splitlines()) == 1
    spiral = tmp_path / "sp"
    assert main(["train", "--data", "spiral", "--out", str(spiral), "--steps", "2", "--hidden", "8", "--quiet"]) == 0
    with pytest.raises(GankitError, match="modes metric applies to the toy mixtures"):
        evaluate_run(spiral, ["modes"], n=100)


def test_eval_images_raw_features(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (64, 28, 28), dtype=np.uint8))
    out = tmp_path / "img"
    assert main(["train", "--data", f"npz:{tmp_path / 'x.npy'}", "--model", "dcgan", "--width", "8",
                 "--z-dim", "8", "--batch-size", "16", "--steps", "3", "--out", str(out), "--quiet"]) == 0
    # Too few for a Fréchet distance of raw 784-d pixels: refused before the samples'
    # features are computed (Inception's take minutes): 100 samples before any feature, 64
    # reference images once their features are known.
    calls = []
    real_call = RawExtractor.__call__
    monkeypatch.setattr(RawExtractor, "__call__", lambda self, x, *a: calls.append(len(x)) or real_call(self, x, *a))
    with pytest.raises(GankitError, match="got 100 samples of 784 features; use --n 785 or more"):
        evaluate_run(out, ["fid"], n=100, extractor="raw")
    assert calls == []
    with pytest.raises(GankitError, match="got 64 reference examples of 784 features; .* score it with --metrics kid"):
        evaluate_run(out, ["fid", "kid"], n=1000, extractor="raw")
    assert calls == [64]
    r = evaluate_run(out, ["kid", "pr", "parzen"], n=100, extractor="raw")
    # KID is unbiased, so near 0 it can be slightly negative; its spread is reported beside it.
    assert np.isfinite(r["kid"]) and r["kid_std"] > 0 and 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
    assert r["reference"].startswith(f"npz:{tmp_path / 'x.npy'} train")
    # Parzen names its own data and leaves the FID/KID reference as it was.
    assert np.isfinite(r["parzen"]) and r["parzen_se"] > 0 and r["parzen_sigma"] > 0
    assert r["parzen_data"].startswith("log-likelihood of 64 images of npz:")


def test_eval_device_option(toy_run, capsys):
    """--device: cpu by default (the same scores as naming it); cuda without a GPU and names
    that are no device end in one line and exit status 2."""
    a = evaluate_run(toy_run, ["modes", "fid"], n=600, write=False)
    b = evaluate_run(toy_run, ["modes", "fid"], n=600, write=False, device="cpu")
    assert a == {**b, "eval_seconds": a["eval_seconds"]} and "device" not in a
    for device, expect in (("cuda", "gankit: error: device 'cuda' asked for, but this torch has no CUDA device; "
                                    "use --device cpu"),
                           ("gpu", "gankit: error: --device must be cpu, cuda, cuda:N or auto, got 'gpu'")):
        assert main(["eval", str(toy_run), "--n", "100", "--device", device]) == 2
        assert capsys.readouterr().err.strip().splitlines() == [expect]


def test_features_on_cuda_run_in_full_fp32():
    """On a CUDA device the feature extractors turn TF32 off (cuDNN's default for fp32
    convolutions) and restore the flags afterwards; on a CPU they are left alone."""
    import torch

    from gankit.metrics.features import full_fp32
    # saved and restored by hand: torch's cuBLAS flags are computed attributes, which some
    # pytest versions' monkeypatch cannot undo
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.allow_tf32, matmul.allow_tf32
    try:
        cudnn.allow_tf32 = matmul.allow_tf32 = True
        with full_fp32(torch.device("cuda")):
            assert not cudnn.allow_tf32 and not matmul.allow_tf32
        assert cudnn.allow_tf32 and matmul.allow_tf32
        with full_fp32(torch.device("cpu")):
            assert cudnn.allow_tf32 and matmul.allow_tf32
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


def test_parse_metrics():
    assert parse_metrics("fid, kid") == ["fid", "kid"]
    with pytest.raises(GankitError):
        parse_metrics("fid,is")


def test_feature_extraction_shows_its_progress_only_where_asked(capsys, monkeypatch):
    """Within progress_to (what gankit eval sets), an extraction of several batches writes
    one line after its second batch with the time left, when that is long enough to matter;
    elsewhere (training's evaluations) nothing; on a terminal a tqdm bar instead."""
    import io

    import torch

    from gankit.metrics import features
    from gankit.metrics.features import progress_to
    x = torch.rand(1200, 1, 4, 4)
    ex = RawExtractor()
    want = ex(x)
    assert capsys.readouterr() == ("", "")
    sink = io.StringIO()
    with progress_to(sink):
        ex(x)                                                # seconds left, not minutes: nothing to say
        assert sink.getvalue() == ""
        monkeypatch.setattr(features, "QUIET_BELOW_S", 0.0)  # as if the rest took long
        np.testing.assert_array_equal(ex(x), want)
        ex(x[:500])                                          # one batch: nothing to show
    lines = sink.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gankit: raw features of 1,200 images: 1,000 done in "), lines
    assert lines[0].endswith("more at this pace")

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    tty = Terminal()
    with progress_to(tty):
        ex(x)
    assert "raw features:" in tty.getvalue() and "/1200 [" in tty.getvalue()   # the bar, drawn and cleared
