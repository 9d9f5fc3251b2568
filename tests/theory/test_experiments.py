"""gankit theory: the paper's claims hold numerically, and the figures are written."""

import json

import pytest

from gankit.cli import main


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("theory")
    assert main(["theory", "--out", str(out), "--experiment", "optimal-d", "figure1", "saturation"]) == 0
    return out, json.loads((out / "theory.json").read_text())


def test_optimal_discriminator_and_criterion(results):
    out, r = results
    o = r["optimal-d"]
    assert o["max_abs_d_minus_dstar"] <= 0.02
    assert abs(o["value_monte_carlo"] - o["C_of_G"]) <= 0.01
    assert abs(o["value_at_dstar"] - o["C_of_G"]) <= 1e-6      # Theorem 1 by quadrature
    assert o["value_quadrature"] <= o["value_at_dstar"] + 1e-9  # no D beats D*
    assert o["pass"] is True and (out / "optimal_d.png").is_file()


def test_training_reaches_the_global_optimum(results):
    out, r = results
    f = r["figure1"]
    assert f["final_jsd"] <= 0.01 and f["max_abs_d_minus_half"] <= 0.02
    assert f["final_G"]["b"] == pytest.approx(2.0, abs=0.1)
    assert abs(f["final_G"]["a"]) == pytest.approx(0.5, abs=0.1)
    assert (out / "figure1.png").is_file() and (out / "figure1_jsd.png").is_file()


def test_saturation(results):
    out, r = results
    s = r["saturation"]
    g = s["grad_at_D_of_G_1e-3"]
    assert g["minimax"] == pytest.approx(1e-3, rel=1e-9) and g["nonsaturating"] == pytest.approx(1 - 1e-3, rel=1e-9)
    assert s["runs"]["nonsaturating"]["final_jsd"] < s["runs"]["minimax"]["final_jsd"]
    assert (out / "saturation_gradients.png").is_file() and (out / "saturation_runs.png").is_file()


def test_bad_experiment_name(tmp_path, capsys):
    assert main(["theory", "--out", str(tmp_path), "--experiment", "nope"]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err
