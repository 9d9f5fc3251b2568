"""The Python API: gankit.train(...) -> Run, Run.open, sampling and evaluating from Python,
the caller's own modules, data and callbacks, logging, and re-running into one place."""

import logging

import numpy as np
import pytest
import torch
from torch import nn

import gankit
from gankit import Callback, GankitError, Run


def test_train_returns_a_run_with_models_samples_and_scores(tmp_path):
    run = gankit.train(data="ring8", steps=60, eval_every=30, out=tmp_path / "r", progress=False)
    assert isinstance(run, Run) and run.step == 60 and run.config.steps == 60
    assert isinstance(run.G, nn.Module) and isinstance(run.D, nn.Module) and not run.G.training
    x = run.sample(500, seed=3)
    assert x.shape == (500, 2) and x.dtype == torch.float32
    assert torch.equal(x, run.sample(500, seed=3)) and not torch.equal(x, run.sample(500, seed=4))
    scores = run.evaluate(["modes"], n=500)
    assert 0 <= scores["modes"] <= 8 and 0.0 <= scores["high_quality"] <= 1.0
    assert run.last_row["step"] == 60 and "modes" in run.last_row
    again = Run.open(tmp_path / "r")
    assert torch.equal(again.sample(500, seed=3), x)      # the same samples from a reopened run


def test_the_callers_noise_and_seeds_are_checked(tmp_path):
    """Noise given as z is taken as float32 from any array-like of shape [n, z_dim]; another
    shape, a value that is not finite or a seed torch cannot take is one GankitError."""
    run = gankit.train(data="ring8", steps=20, eval_every=20, out=tmp_path / "r", progress=False)
    z = torch.randn(5, run.config.z_dim, generator=torch.Generator().manual_seed(0))
    x = run.sample(0, z=z)
    assert x.shape == (5, 2)
    assert torch.equal(run.sample(0, z=z.double()), x) and torch.equal(run.sample(0, z=z.numpy()), x)
    assert torch.equal(run.sample(0, z=z.tolist()), x)
    assert torch.equal(run.sample(5, seed=np.int64(7)), run.sample(5, seed=7))
    for bad, expect in [(torch.randn(5, run.config.z_dim + 1), "z must be noise vectors"),
                        (torch.randn(run.config.z_dim), "z must be noise vectors"),
                        (torch.zeros(0, run.config.z_dim), "z must be noise vectors"),
                        (torch.full((2, run.config.z_dim), float("nan")), "not finite"),
                        ("abc", "z must be a tensor")]:
        with pytest.raises(GankitError, match=expect):
            run.sample(0, z=bad)
    for seed in (-1, 2**62 + 1, 1.5, True, "3"):
        with pytest.raises(GankitError, match="seed must be a whole number from 0 to 2"):
            run.sample(5, seed=seed)
        with pytest.raises(GankitError, match="seed must be"):
            run.evaluate(["modes"], n=100, seed=seed)
    assert run.sample(1, seed=2**62).shape == (1, 2)      # the largest seed draws


def test_image_samples_are_in_the_unit_interval(tmp_path):
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    run = gankit.train(data=images, model="dcgan", width=8, z_dim=16, batch_size=16, steps=4, eval_every=0,
                       out=tmp_path / "r", progress=False)
    x = run.sample(10)
    assert x.shape == (10, 1, 28, 28) and 0.0 <= x.min() and x.max() <= 1.0
    assert run.config.data == "python"


class PointsG(nn.Module):
    def __init__(self, z_dim=4, d=3):
        super().__init__()
        self.z_dim, self.out_shape = z_dim, (d,)
        self.net = nn.Sequential(nn.Linear(z_dim, 32), nn.ReLU(), nn.Linear(32, d))

    def forward(self, z):
        return self.net(z)


class PointsD(nn.Module):
    def __init__(self, d=3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


def test_own_modules_data_and_callbacks(tmp_path):
    """Your own G and D, points of your own (standardised for training, samples back in
    their units) and a callback that sees every step and adds to the logged rows."""
    rng = np.random.default_rng(0)
    points = rng.normal([100.0, -5.0, 0.0], [10.0, 0.1, 1.0], size=(2000, 3))

    class Count(Callback):
        def __init__(self):
            self.steps = []

        def on_step_end(self, trainer, step, stats, row):
            self.steps.append(step)
            if row:
                row["my_value"] = float(step)

    cb = Count()
    G, D = PointsG(), PointsD()
    run = gankit.train(generator=G, discriminator=D, data=torch.tensor(points), callbacks=[cb], steps=300,
                       z_dim=4, batch_size=128, lr_g=2e-3, lr_d=2e-3, log_every=100, eval_every=0,
                       out=tmp_path / "r", progress=False)
    assert cb.steps == list(range(1, 301)) and run.last_row["my_value"] == 300.0
    assert run.G is G and run.config.model == "custom"
    x = run.sample(4000).numpy()
    assert np.allclose(x.mean(0), points.mean(0), atol=np.array([5.0, 0.1, 0.5]))   # in the data's units
    assert 2.0 < x[:, 0].std() < 30.0
    with pytest.raises(GankitError, match="generator=G, discriminator=D"):
        Run.open(tmp_path / "r").sample(3)
    assert Run.open(tmp_path / "r", PointsG(), PointsD()).sample(5).shape == (5, 3)


def test_a_dataset_of_images_with_labels(tmp_path):
    images = torch.rand(48, 1, 28, 28)
    ds = torch.utils.data.TensorDataset(images, torch.zeros(48, dtype=torch.long))
    run = gankit.train(data=ds, model="dcgan", width=8, z_dim=16, batch_size=16, steps=2, eval_every=0,
                       out=tmp_path / "r", progress=False)
    assert run.step == 2 and run.sample(2).shape == (2, 1, 28, 28)


def test_rerunning_into_one_place_is_an_explicit_choice(tmp_path):
    out = tmp_path / "r"
    gankit.train(steps=10, eval_every=0, out=out, progress=False)
    with pytest.raises(GankitError, match="already holds a run"):
        gankit.train(steps=10, eval_every=0, out=out, progress=False)
    run = gankit.train(steps=12, eval_every=0, out=out, overwrite=True, progress=False, lr_schedule="constant")
    assert run.step == 12
    more = gankit.train(out=out, resume=True, steps=20, progress=False)
    assert more.step == 20
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(GankitError, match="not one"):
        gankit.train(steps=10, out=tmp_path / "mine", overwrite=True, progress=False)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_messages_go_through_logging(tmp_path, capsys):
    """A library user silences gankit with the logging module; progress=False stops the
    progress lines."""
    run = gankit.train(steps=10, eval_every=0, out=tmp_path / "r", progress=False)
    path = run.checkpoints()[-1]
    path.write_bytes(path.read_bytes()[:50])                     # damage the newest checkpoint
    (tmp_path / "r" / "checkpoints" / "step_000005.pt").write_bytes(b"x")
    logger = logging.getLogger("gankit")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        capsys.readouterr()
        with pytest.raises(GankitError, match="damaged"):
            Run.open(tmp_path / "r").sample(2)
        assert capsys.readouterr().err == ""
    finally:
        logger.setLevel(old)
    gankit.train(steps=10, eval_every=0, out=tmp_path / "q", progress=False)
    out = capsys.readouterr()   # no progress lines; at most the information line of ring8's own defaults
    assert out.out.splitlines() in ([], ["gankit: data ring8: its own defaults z_dim 2, r1 0.01, reg_every 16 "
                                         "(set any of them to override)"])   # [] when no handler prints INFO


def test_a_callback_may_stop_the_run_with_a_checkpoint(tmp_path):
    """stop_requested = True: the run stops after that step, as on SIGINT, with a checkpoint
    of that step, reports itself interrupted, and resumes to the same weights as a run
    that never stopped."""
    class StopAt(Callback):
        def on_step_end(self, trainer, step, stats, row):
            self.stop_requested = step == 70

    opts = dict(data="ring8", steps=120, hidden=16, depth=2, eval_every=0, checkpoint_every=1000, progress=False)
    run = gankit.train(callbacks=[StopAt()], out=tmp_path / "s", **opts)
    assert run.interrupted and run.step == 70
    assert sorted(p.name for p in (tmp_path / "s" / "checkpoints").glob("*.pt")) == ["step_000070.pt"]
    resumed = gankit.train(out=tmp_path / "s", resume=True, progress=False)
    whole = gankit.train(out=tmp_path / "w", **opts)
    assert not resumed.interrupted and resumed.step == whole.step == 120
    for a, b in zip(resumed.G.state_dict().values(), whole.G.state_dict().values()):
        assert torch.equal(a, b)


def test_progress_stops_the_run_when_its_reader_has_gone(capsys):
    """`gankit train | head`: printing a progress line fails with BrokenPipeError; Progress
    prints nothing more, says so once on stderr and asks the run to stop (the stop itself:
    the test above)."""
    from gankit.training.callbacks import Progress

    class Gone:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    p = Progress(100, stream=Gone())
    row = {"loss_d": 1.0, "value": -1.0, "d_real": 0.5, "d_fake": 0.5, "examples_per_s": 1.0}
    assert not p.stop_requested
    p.on_step_end(None, 1, None, row)
    p.on_step_end(None, 2, None, row)                  # disabled: no second attempt, no second message
    assert p.stop_requested and not p.enabled
    err = capsys.readouterr().err
    assert err.count("the reader of stdout has gone; finishing this step and writing a checkpoint") == 1
