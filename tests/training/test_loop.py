"""Algorithm 1: the order of updates and draws, freshness, and which network moves when."""

import pytest
import torch

from gankit import Config, objectives
from gankit.data import make_source
from gankit.models import build_models
from gankit.models.mlp import MLPDiscriminator, MLPGenerator
from gankit.sampling import sample_noise
from gankit.training.loop import GANTrainer, run_loop


def _trainer(k, lr=1e-2, optimizer="sgd", conditional=False):
    torch.manual_seed(0)
    if conditional:
        G, D = build_models(Config(z_dim=4, hidden=16, depth=2), (2,), num_classes=8)
    else:
        G, D = MLPGenerator(4, (2,), hidden=16, depth=2), MLPDiscriminator((2,), hidden=16, depth=2)
    opt = (lambda p: torch.optim.SGD(p, lr=lr, momentum=0.5)) if optimizer == "sgd" else \
        (lambda p: torch.optim.Adam(p, lr=lr))
    source = make_source(Config(data="ring8", conditional=True) if conditional else "ring8", torch.device("cpu"))
    return GANTrainer(G, D, opt(G.parameters()), opt(D.parameters()), source,
                      "nonsaturating", k, 8, 4, "normal",
                      torch.Generator().manual_seed(1), torch.Generator().manual_seed(2),
                      class_probs=torch.full((8,), 1 / 8) if conditional else None)


def _flat(module):
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


class Recorder:
    """Wraps the trainer's random draws and optimizer steps, logging events in order."""

    def __init__(self, t: GANTrainer):
        self.events, self.batches, self.noises, self.labels, self.fake_labels = [], [], [], [], []
        self.t = t
        source_next, noise_batch = t.data.next, t.noise_batch
        labelled_next = t.data.next_labeled

        def data_next(m, gen):
            x = source_next(m, gen)
            self.events.append("data")
            self.batches.append(x)
            return x

        def data_next_labeled(m, gen):
            x, y = labelled_next(m, gen)
            self.events.append("data")
            self.batches.append(x)
            self.labels.append(y)
            return x, y

        def noise(m):
            z, y = noise_batch(m)
            self.events.append("noise")
            self.noises.append(z)
            self.fake_labels.append(y)
            return z, y

        t.data.next, t.data.next_labeled = data_next, data_next_labeled
        t.noise_batch = noise
        for name, opt, mine, other in (("D", t.opt_d, t.D, t.G), ("G", t.opt_g, t.G, t.D)):
            self._wrap(name, opt, mine, other)

    def _wrap(self, name, opt, mine, other):
        step = opt.step

        def wrapped(*a, **kw):
            other_before, mine_before = _flat(other), _flat(mine)
            out = step(*a, **kw)
            # The other network is fixed while this one updates.
            assert torch.equal(_flat(other), other_before), f"{name} step changed the other network"
            assert not torch.equal(_flat(mine), mine_before), f"{name} step did not move {name}"
            self.events.append(f"update_{name}")
            return out

        opt.step = wrapped


@pytest.mark.parametrize("k, conditional", [(1, False), (3, False), (2, True)])
def test_update_order_matches_algorithm_1(k, conditional):
    t = _trainer(k, conditional=conditional)
    rec = Recorder(t)
    t.step()
    t.step()
    one = ["noise", "data", "update_D"] * k + ["noise", "update_G"]
    assert rec.events == one * 2
    # Every minibatch and noise batch is fresh: no two are equal.
    for group in (rec.batches, rec.noises):
        for i in range(len(group)):
            for j in range(i):
                assert not torch.equal(group[i], group[j])
    assert len(rec.batches) == 2 * k and len(rec.noises) == 2 * (k + 1)
    assert t.step_count == 2
    if conditional:   # every batch comes with its classes: the data's, and fresh ones for G
        assert len(rec.labels) == 2 * k and all(len(y) == 8 for y in rec.labels)
        assert all(y is not None and len(y) == 8 and y.dtype == torch.long for y in rec.fake_labels)
        assert len({tuple(y.tolist()) for y in rec.fake_labels}) > 1


def test_discriminator_step_ascends_the_value_function():
    """D's gradient after its step is exactly -grad Ṽ on the batches it drew."""
    t = _trainer(1, lr=0.0)  # lr 0: parameters stay put, so the gradient can be recomputed
    xs, zs = [], []
    nxt, nb = t.data.next, t.noise_batch
    t.data.next = lambda m, g: xs.append(nxt(m, g)) or xs[-1]
    t.noise_batch = lambda m: zs.append(nb(m)[0]) or (zs[-1], None)
    t.discriminator_step()
    got = [p.grad.clone() for p in t.D.parameters()]
    v = objectives.value(t.D(xs[0]), t.D(t.G(zs[0]).detach()))
    want = torch.autograd.grad(-v, list(t.D.parameters()))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_generator_step_descends_its_loss_and_leaves_d_grads():
    t = _trainer(1, lr=0.0)
    zs = []
    nb = t.noise_batch
    t.noise_batch = lambda m: zs.append(nb(m)[0]) or (zs[-1], None)
    t.generator_step()
    got = [p.grad.clone() for p in t.G.parameters()]
    want = torch.autograd.grad(objectives.generator_loss(t.D(t.G(zs[0])), "nonsaturating"),
                               list(t.G.parameters()))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert all(p.grad is None for p in t.D.parameters())  # D received no gradient
    assert all(p.requires_grad for p in t.D.parameters())  # and is trainable again


def test_stats_are_consistent():
    t = _trainer(2, optimizer="adam", lr=1e-3)
    s = t.step(with_grad_norms=True).to_dict()
    assert s["value"] == pytest.approx(-s["loss_d"], rel=1e-6)
    assert 0 < s["d_real"] < 1 and 0 < s["d_fake"] < 1
    assert s["grad_norm_d"] > 0 and s["grad_norm_g"] > 0
    assert "grad_norm_d" not in t.step().to_dict()


def test_run_loop_stops_on_request_and_calls_hooks():
    t = _trainer(1)
    seen = []

    class Hook:
        def on_start(self, tr): seen.append("start")
        def wants_stats(self, step): return step == 2
        def on_step_end(self, tr, step, stats, row): seen.append((step, stats.grad_norm_d is not None))
        def on_end(self, tr, step): seen.append(("end", step))

    last = run_loop(t, 10, [Hook()], should_stop=lambda: t.step_count >= 3)
    assert last == 3
    assert seen == ["start", (1, False), (2, True), (3, False), ("end", 3)]


@pytest.mark.parametrize("prior", ["normal", "uniform", "uniform_unit"])
def test_noise_priors(prior):
    z = sample_noise(100_000, 3, prior, torch.Generator().manual_seed(0))
    assert z.shape == (100_000, 3)
    if prior == "uniform":
        assert z.min() >= -1 and z.max() < 1
        assert z.var().item() == pytest.approx(1 / 3, abs=0.005)   # Var U(-1,1) = 1/3; SE ~0.0006
    elif prior == "uniform_unit":                                  # U(-√3, √3): the published code's
        assert z.min() >= -3 ** 0.5 and z.max() < 3 ** 0.5
        assert z.min() < -1.72 and z.max() > 1.72                  # reaches past U(-1, 1)'s edges
        assert z.var().item() == pytest.approx(1.0, abs=0.015)     # SE ~0.0019
        u = sample_noise(100_000, 3, "uniform", torch.Generator().manual_seed(0))
        torch.testing.assert_close(z, u * 3 ** 0.5, rtol=0, atol=0)   # the same draws, scaled
    else:
        assert z.var().item() == pytest.approx(1.0, abs=0.015)     # SE ~0.0026
    assert abs(z.mean().item()) < 0.01


def test_simultaneous_update_takes_both_gradients_from_the_same_state():
    """update=simultaneous (the published code): one data batch and one noise batch; D's
    gradient is -grad Ṽ and G's is grad L_G, both at the parameters *before* either step."""
    t = _trainer(1, lr=0.05)
    t.update = "simultaneous"
    xs, zs = [], []
    nxt, nb = t.data.next, t.noise_batch
    t.data.next = lambda m, g: xs.append(nxt(m, g)) or xs[-1]
    t.noise_batch = lambda m: zs.append(nb(m)[0]) or (zs[-1], None)
    G0, D0 = _flat(t.G), _flat(t.D)
    import copy
    Gc, Dc = copy.deepcopy(t.G), copy.deepcopy(t.D)
    s = t.step().to_dict()
    assert len(xs) == 1 and len(zs) == 1  # one batch of each
    fake = Gc(zs[0])
    real_logits, fake_logits = Dc(xs[0]), Dc(fake)
    gd = torch.autograd.grad(objectives.discriminator_loss(real_logits, fake_logits), list(Dc.parameters()),
                             retain_graph=True)
    gg = torch.autograd.grad(objectives.generator_loss(fake_logits, "nonsaturating"), list(Gc.parameters()))
    # SGD with momentum 0.5 on a fresh buffer: the first step is p - lr * grad.
    want_d = D0 - 0.05 * torch.cat([g.flatten() for g in gd])
    want_g = G0 - 0.05 * torch.cat([g.flatten() for g in gg])
    torch.testing.assert_close(_flat(t.D), want_d, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(_flat(t.G), want_g, rtol=1e-6, atol=1e-7)
    want = float(objectives.generator_loss(fake_logits, "nonsaturating").detach())
    assert s["loss_g"] == pytest.approx(want, rel=1e-6)
    assert t.step_count == 1


def test_fused_sgd_is_bitwise_foreach_sgd():
    """make_optimizer fuses SGD everywhere on the premise that it changes no bit (momentum
    and learning rate changing between steps, as the paper's schedule does)."""
    from gankit.config import Config
    from gankit.training.optim import make_optimizer
    torch.manual_seed(0)
    ps = [torch.randn(300, 200), torch.randn(200), torch.randn(7, 5)]
    a = [p.clone().requires_grad_() for p in ps]
    b = [p.clone().requires_grad_() for p in ps]
    cfg = Config(optimizer="sgd", momentum=0.5)
    oa = torch.optim.SGD(a, lr=0.1, momentum=0.5, foreach=True)
    ob = make_optimizer("sgd", b, 0.1, cfg)
    assert ob.defaults.get("fused")
    for i in range(10):
        for x, y in zip(a, b):
            x.grad = torch.randn_like(x)
            y.grad = x.grad.clone()
        oa.step()
        ob.step()
        for g in oa.param_groups + ob.param_groups:
            g["momentum"], g["lr"] = 0.5 + 0.02 * i, 0.1 / 1.000004 ** i
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], ps[0])  # the parameters did move
