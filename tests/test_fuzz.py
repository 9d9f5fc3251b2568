"""Fuzzing the configuration parser and the data loaders with hypothesis: whatever the
input, the outcome is a valid result or a GankitError, never another exception."""

import string

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gankit.config import Config, load_config
from gankit.data.images import load_array, read_idx
from gankit.errors import GankitError

keys = st.sampled_from([f.name for f in Config.__dataclass_fields__.values()] + ["bogus", "", "k "])
values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=12), st.lists(st.integers(), max_size=3))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(keys, values, max_size=6))
def test_config_from_any_mapping(d):
    try:
        cfg = Config.from_dict(d).validate()
    except GankitError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(cfg, Config)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=string.printable, max_size=200))
def test_config_file_from_any_text(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    try:
        load_config(p)
    except GankitError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_idx_reader_on_any_bytes(tmp_path, raw):
    p = tmp_path / "x.idx"
    p.write_bytes(raw)
    try:
        a = read_idx(p)
    except GankitError:
        return
    assert isinstance(a, np.ndarray)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 4), st.integers(0, 5), st.sampled_from(["u1", "f4", "i8", "f8", "b1", "c8"]),
       st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0, float("nan")]))
def test_array_loader_on_odd_arrays(tmp_path, ndim, size, dtype, fill):
    shape = tuple([size + 1] * ndim)
    a = np.full(shape, fill if dtype[0] in "fc" else abs(int(fill)) if fill == fill else 0, dtype=dtype)
    p = tmp_path / "a.npy"
    np.save(p, a)
    try:
        out = load_array(p)
    except GankitError as exc:
        assert "a.npy" in str(exc)
        return
    assert out.dtype == np.uint8 and out.ndim == 4 and out.shape[1] in (1, 3)
