"""Network cost models (``docs/model.md``): ring alpha-beta-gamma, fitted tables, YAML files and the
shipped presets."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from dearsim.errors import DearsimError
from dearsim.network import (
    AlphaBeta,
    Fit,
    Fitted,
    Line,
    Op,
    load_network,
    load_preset,
    parse_network,
    preset_names,
)

REL = 1e-12

# --------------------------------------------------------------------------- ring formulas
# p = 4, alpha = 1e-5 s, beta = 1e-9 s/B, gamma = 2e-10 s/B, n = 8e6 B.
#   p - 1 = 3, (p - 1)/p = 0.75, so (p - 1)/p * n = 6e6 B
#   all-reduce     = 2*3*1e-5 + 2*6e6*1e-9 + 6e6*2e-10 = 6e-5 + 1.2e-2 + 1.2e-3 = 1.326e-2 s
#   reduce-scatter =   3*1e-5 +   6e6*1e-9 + 6e6*2e-10 = 3e-5 + 6e-3   + 1.2e-3 = 7.23e-3 s
#   all-gather     =   3*1e-5 +   6e6*1e-9             = 3e-5 + 6e-3            = 6.03e-3 s
P, ALPHA, BETA, GAMMA, N = 4, 1e-5, 1e-9, 2e-10, 8e6
AR_EXPECTED = 1.326e-2
RS_EXPECTED = 7.23e-3
AG_EXPECTED = 6.03e-3


@pytest.fixture
def ring() -> AlphaBeta:
    return AlphaBeta(ALPHA, BETA, GAMMA)


def test_ring_allreduce(ring: AlphaBeta) -> None:
    assert ring.allreduce(N, P) == pytest.approx(AR_EXPECTED, rel=REL)


def test_ring_reduce_scatter(ring: AlphaBeta) -> None:
    assert ring.reduce_scatter(N, P) == pytest.approx(RS_EXPECTED, rel=REL)


def test_ring_all_gather_has_no_gamma(ring: AlphaBeta) -> None:
    assert ring.all_gather(N, P) == pytest.approx(AG_EXPECTED, rel=REL)


def test_ring_costs_lines(ring: AlphaBeta) -> None:
    c = ring.costs(P)
    assert c.workers == 4
    # a = startup term, b = per-byte slope
    assert c.allreduce.a == pytest.approx(6e-5, rel=REL)
    assert c.allreduce.b == pytest.approx(1.5e-9 + 1.5e-10, rel=REL)  # 2*.75*beta + .75*gamma
    assert c.reduce_scatter.a == pytest.approx(3e-5, rel=REL)
    assert c.reduce_scatter.b == pytest.approx(0.75e-9 + 1.5e-10, rel=REL)
    assert c.all_gather.a == pytest.approx(3e-5, rel=REL)
    assert c.all_gather.b == pytest.approx(0.75e-9, rel=REL)
    assert c.startup == pytest.approx(6e-5, rel=REL)
    assert c.time(Op.ALLREDUCE, N) == pytest.approx(AR_EXPECTED, rel=REL)
    assert c.time(Op.REDUCE_SCATTER, N) == pytest.approx(RS_EXPECTED, rel=REL)
    assert c.time(Op.ALL_GATHER, N) == pytest.approx(AG_EXPECTED, rel=REL)


def test_rs_plus_ag_is_allreduce_without_gamma() -> None:
    net = AlphaBeta(3e-6, 4e-10)
    for p in (2, 3, 7, 64):
        for n in (1, 1000, 12_345_678):
            assert net.reduce_scatter(n, p) + net.all_gather(n, p) == pytest.approx(
                net.allreduce(n, p), rel=REL
            )


def test_ring_p2_worked_example_numbers() -> None:
    """Example A of ``docs/model.md``: p = 2, alpha = 0, beta = 1e-9: AR of n takes n*beta,
    RS/AG n*beta/2."""
    net = AlphaBeta(0.0, 1e-9)
    assert net.allreduce(2e6, 2) == pytest.approx(2e-3, rel=REL)
    assert net.reduce_scatter(2e6, 2) == pytest.approx(1e-3, rel=REL)
    assert net.all_gather(2e6, 2) == pytest.approx(1e-3, rel=REL)


@pytest.mark.parametrize("op", ["allreduce", "reduce_scatter", "all_gather"])
def test_one_worker_costs_nothing(ring: AlphaBeta, op: str) -> None:
    assert getattr(ring, op)(N, 1) == 0.0
    assert ring.costs(1).startup == 0.0


@pytest.mark.parametrize("op", ["allreduce", "reduce_scatter", "all_gather"])
def test_zero_bytes_cost_nothing(ring: AlphaBeta, op: str) -> None:
    assert getattr(ring, op)(0, P) == 0.0
    assert getattr(ring, op)(1, P) > 0.0  # ...but one byte pays the startup


@pytest.mark.parametrize("workers", [0, -1, 2.0, True, "4"])
def test_bad_worker_count(ring: AlphaBeta, workers: object) -> None:
    with pytest.raises(DearsimError, match="workers: must be a positive integer"):
        ring.costs(workers)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["alpha", "beta", "gamma"])
@pytest.mark.parametrize("value", [-1e-9, float("inf"), float("nan")])
def test_alphabeta_rejects_bad_numbers(field: str, value: float) -> None:
    kw = {"alpha": 1e-5, "beta": 1e-9, "gamma": 0.0, field: value}
    with pytest.raises(DearsimError, match=f"{field} must be a finite number >= 0"):
        AlphaBeta(**kw)


def test_line_costs_nothing_for_zero_bytes() -> None:
    assert Line(1.0, 2.0)(0) == 0.0
    assert Line(1.0, 2.0)(3) == 7.0


# --------------------------------------------------------------------------- fitted model
# One fit for 4 workers: T(n) = 4e-5 + 2e-10 n.  n = 1e7:
#   all-reduce = 4e-5 + 2e-3 = 2.04e-3 s;  RS = AG = 2e-5 + 1e-3 = 1.02e-3 s (a/2 + b/2 n).


def test_fitted_halves_for_rs_and_ag() -> None:
    net = Fitted({4: Fit(Line(4e-5, 2e-10))})
    assert net.allreduce(1e7, 4) == pytest.approx(2.04e-3, rel=REL)
    assert net.reduce_scatter(1e7, 4) == pytest.approx(1.02e-3, rel=REL)
    assert net.all_gather(1e7, 4) == pytest.approx(1.02e-3, rel=REL)
    assert net.costs(4).startup == pytest.approx(4e-5, rel=REL)


def test_fitted_separate_rs_and_ag_fits_win() -> None:
    net = Fitted({4: Fit(Line(4e-5, 2e-10), Line(1e-5, 3e-10), Line(7e-6, 5e-11))})
    assert net.allreduce(1e7, 4) == pytest.approx(2.04e-3, rel=REL)
    assert net.reduce_scatter(1e7, 4) == pytest.approx(1e-5 + 3e-3, rel=REL)
    assert net.all_gather(1e7, 4) == pytest.approx(7e-6 + 5e-4, rel=REL)


def test_fitted_one_worker_and_zero_bytes() -> None:
    net = Fitted({4: Fit(Line(4e-5, 2e-10))})
    assert net.allreduce(1e7, 1) == 0.0  # p = 1 needs no fit and costs nothing
    assert net.allreduce(0, 4) == 0.0
    assert net.reduce_scatter(0, 4) == 0.0


def test_fitted_missing_worker_count() -> None:
    net = Fitted({4: Fit(Line(4e-5, 2e-10)), 16: Fit(Line(1e-4, 3e-10))}, name="mycluster")
    with pytest.raises(DearsimError) as info:
        net.costs(8)
    msg = str(info.value)
    assert "mycluster" in msg and "8 workers" in msg and "4, 16" in msg


# --------------------------------------------------------------------------- YAML files


def write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def net_error(tmp_path: Path, text: str, name: str = "net.yaml") -> str:
    p = write(tmp_path, text, name)
    with pytest.raises(DearsimError) as info:
        load_network(str(p))
    msg = str(info.value)
    assert str(p) in msg, msg
    assert "\n" not in msg
    return msg


def test_alphabeta_yaml(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "name: lab\nalpha_s: 1e-5\nbeta_s_per_byte: 1.0e-9\ngamma_s_per_byte: 2.0e-10\n"
        "sources:\n  alpha_s: measured\n",
    )
    net = load_network(str(p))
    assert isinstance(net, AlphaBeta)
    assert (net.alpha, net.beta, net.gamma) == (1e-5, 1e-9, 2e-10)
    assert net.name == "lab"
    assert dict(net.sources) == {"alpha_s": "measured"}
    assert net.allreduce(N, P) == pytest.approx(AR_EXPECTED, rel=REL)
    assert load_network(p).allreduce(N, P) == net.allreduce(N, P)  # a Path works too


def test_alphabeta_yaml_gamma_defaults_to_zero_and_name_to_stem(tmp_path: Path) -> None:
    net = load_network(str(write(tmp_path, "alpha_s: 0\nbeta_s_per_byte: 1e-9\n", "x.yaml")))
    assert isinstance(net, AlphaBeta)
    assert net.gamma == 0.0
    assert net.name == "x"


def test_fits_yaml(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "fits:\n"
        "  - workers: 4\n"
        "    allreduce: {a_s: 4.0e-5, b_s_per_byte: 2.0e-10}\n"
        "  - workers: 8\n"
        "    allreduce: {a_s: 1.0e-4, b_s_per_byte: 3.0e-10}\n"
        "    reduce_scatter: {a_s: 1.0e-5, b_s_per_byte: 1.0e-10}\n",
        "fit.yaml",
    )
    net = load_network(str(p))
    assert isinstance(net, Fitted)
    assert sorted(net.fits) == [4, 8]
    assert net.reduce_scatter(1e7, 4) == pytest.approx(1.02e-3, rel=REL)
    assert net.reduce_scatter(1e7, 8) == pytest.approx(1e-5 + 1e-3, rel=REL)  # own fit
    assert net.all_gather(1e7, 8) == pytest.approx(5e-5 + 1.5e-3, rel=REL)  # half of AR


def test_mapping_is_accepted() -> None:
    net = load_network({"alpha_s": 1e-5, "beta_s_per_byte": 1e-9, "gamma_s_per_byte": 2e-10})
    assert net.allreduce(N, P) == pytest.approx(AR_EXPECTED, rel=REL)


def test_model_is_passed_through() -> None:
    net = AlphaBeta(1e-5, 1e-9)
    assert load_network(net) is net


def test_both_forms_is_an_error(tmp_path: Path) -> None:
    msg = net_error(
        tmp_path,
        "alpha_s: 1e-5\nbeta_s_per_byte: 1e-9\n"
        "fits:\n  - {workers: 4, allreduce: {a_s: 1e-5, b_s_per_byte: 1e-9}}\n",
    )
    assert "not both" in msg


def test_missing_beta_names_file_and_field(tmp_path: Path) -> None:
    msg = net_error(tmp_path, "name: lab\nalpha_s: 1e-5\n")
    assert "missing beta_s_per_byte" in msg


def test_missing_alpha_names_field(tmp_path: Path) -> None:
    msg = net_error(tmp_path, "beta_s_per_byte: 1e-9\n")
    assert "missing alpha_s" in msg


def test_neither_form(tmp_path: Path) -> None:
    msg = net_error(tmp_path, "name: lab\ngamma_s_per_byte: 0\n")
    assert "alpha_s" in msg and "fits" in msg


@pytest.mark.parametrize(
    ("key", "line"), [("alpha_s", 2), ("beta_s_per_byte", 3), ("gamma_s_per_byte", 4)]
)
def test_negative_values(tmp_path: Path, key: str, line: int) -> None:
    vals = {"alpha_s": "1e-5", "beta_s_per_byte": "1e-9", "gamma_s_per_byte": "0"}
    vals[key] = "-1e-6"
    text = "name: lab\n" + "".join(f"{k}: {v}\n" for k, v in vals.items())
    msg = net_error(tmp_path, text)
    assert f":{line}: {key}:" in msg and "greater than or equal to 0" in msg


def test_non_numeric_alpha(tmp_path: Path) -> None:
    msg = net_error(tmp_path, "alpha_s: fast\nbeta_s_per_byte: 1e-9\n")
    assert ":1: alpha_s:" in msg


def test_infinite_alpha_names_file_and_key(tmp_path: Path) -> None:
    """Regression: '.inf' once passed the schema and failed later without file or key."""
    msg = net_error(tmp_path, "alpha_s: .inf\nbeta_s_per_byte: 1e-9\n")
    assert ":1: alpha_s:" in msg and "finite" in msg


def test_boolean_alpha_is_rejected(tmp_path: Path) -> None:
    """Regression: pydantic's lax mode once took a YAML ``true`` as alpha = 1 s."""
    msg = net_error(tmp_path, "alpha_s: true\nbeta_s_per_byte: 1e-9\n")
    assert ":1: alpha_s:" in msg


def test_unknown_key(tmp_path: Path) -> None:
    msg = net_error(tmp_path, "alpha_s: 1e-5\nbeta_s_per_byte: 1e-9\nlatency_s: 3\n")
    assert ":3: latency_s: unknown key" in msg


def test_negative_fit(tmp_path: Path) -> None:
    msg = net_error(
        tmp_path, "fits:\n  - workers: 4\n    allreduce: {a_s: -1.0e-5, b_s_per_byte: 1e-9}\n"
    )
    assert ":3: fits[0].allreduce.a_s:" in msg


def test_fit_missing_slope(tmp_path: Path) -> None:
    msg = net_error(tmp_path, "fits:\n  - workers: 4\n    allreduce: {a_s: 1.0e-5}\n")
    assert "fits[0].allreduce.b_s_per_byte" in msg


def test_duplicate_fit_worker_count(tmp_path: Path) -> None:
    msg = net_error(
        tmp_path,
        "fits:\n  - {workers: 4, allreduce: {a_s: 1e-5, b_s_per_byte: 1e-9}}\n"
        "  - {workers: 4, allreduce: {a_s: 2e-5, b_s_per_byte: 1e-9}}\n",
    )
    assert "twice" in msg


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_bad_fit_worker_count(tmp_path: Path, workers: str) -> None:
    msg = net_error(
        tmp_path,
        f"fits:\n  - workers: {workers}\n    allreduce: {{a_s: 1e-5, b_s_per_byte: 1e-9}}\n",
    )
    assert ":2: fits[0].workers:" in msg


def test_fitted_file_missing_worker_count(tmp_path: Path) -> None:
    p = write(tmp_path, "fits:\n  - {workers: 4, allreduce: {a_s: 1e-5, b_s_per_byte: 1e-9}}\n",
              "cluster.yaml")
    net = load_network(str(p))
    with pytest.raises(DearsimError) as info:
        net.costs(8)
    msg = str(info.value)
    assert "cluster" in msg and "no fit for 8 workers" in msg and "4" in msg


@pytest.mark.parametrize("text", ["", "- 1\n- 2\n", "just words\n"])
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    msg = net_error(tmp_path, text)
    assert "mapping" in msg


def test_invalid_yaml(tmp_path: Path) -> None:
    msg = net_error(tmp_path, "alpha_s: [1e-5\nbeta_s_per_byte: 1e-9\n")
    assert "invalid YAML" in msg


def test_neither_preset_nor_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(DearsimError) as info:
        load_network(missing)
    assert missing in str(info.value)
    assert "10GbE" in str(info.value)  # the message lists the presets


def test_unknown_preset_name() -> None:
    with pytest.raises(DearsimError, match="unknown network preset 'Token-Ring'"):
        load_preset("Token-Ring")


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    msg = net_error(tmp_path, "alpha_s: !!python/object/apply:os.system ['true']\n")
    assert "invalid YAML" in msg


def test_parse_network_source_in_message() -> None:
    with pytest.raises(DearsimError, match=r"^inline:2: beta_s_per_byte:"):
        parse_network("alpha_s: 0\nbeta_s_per_byte: -1\n", "inline")


# --------------------------------------------------------------------------- presets

PRESET_DIR = resources.files("dearsim") / "presets"
NUMBER_KEYS = ("alpha_s", "beta_s_per_byte", "gamma_s_per_byte", "fits")


def preset_yaml(name: str) -> dict:
    return yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def test_required_presets_ship() -> None:
    names = preset_names()
    for required in ("10GbE", "100GbIB", "10GbE-fit", "100GbIB-fit"):
        assert required in names


@pytest.mark.parametrize("name", preset_names())
def test_preset_loads_and_cites_every_number(name: str) -> None:
    net = load_network(name)
    assert net.name == name
    assert load_network(name.lower()).name == name  # preset names are case-insensitive
    raw = preset_yaml(name)
    held = [k for k in NUMBER_KEYS if k in raw]
    assert held, f"preset {name} holds no numbers"
    sources = raw.get("sources") or {}
    for key in held:
        text = sources.get(key)
        assert isinstance(text, str) and text.strip(), f"preset {name}: no source for {key}"
    assert dict(net.sources) == sources
    if isinstance(net, AlphaBeta):
        # gamma is a number the model holds even when the file omits it
        assert {"alpha_s", "beta_s_per_byte", "gamma_s_per_byte"} <= set(sources)
    else:
        assert isinstance(net, Fitted)
        assert "fits" in sources


@pytest.mark.parametrize(("name", "beta"), [("10GbE", 8.0e-10), ("100GbIB", 8.0e-11)])
def test_line_rate_presets(name: str, beta: float) -> None:
    """beta is the line rate (10 Gb/s is 8.0e-10 s/B; 100 Gb/s is 8.0e-11 s/B);
    alpha is the 64-worker fit's startup a over the ring's 2(p-1) = 126 steps, as documented."""
    net = load_network(name)
    assert isinstance(net, AlphaBeta)
    assert net.beta == beta
    fit_a = load_network(f"{name}-fit").costs(64).allreduce.a
    assert net.alpha == pytest.approx(fit_a / 126, rel=1e-3)
    assert net.costs(64).startup == pytest.approx(fit_a, rel=1e-3)


# The whole-all-reduce fits T(n) = a + b*n hard-coded in MG-WFBP (HKBU-HPML/MG-WFBP) and in
# DeAR's MG-WFBP baseline (lzhangbv/dear_pytorch), typed in again here from the public code:
# workers -> (10GbE a, 10GbE b, IB a, IB b); None where the code has no value.
PUBLISHED_FITS = {
    2: (2.555e-6, 9.838e-11, 2.555e-6, 9.838e-11),
    4: (4.204e-5, 2.059e-10, 4.204e-5, 2.059e-10),
    8: (5.230e-4, 8.571e-10, 9.754e-5, 3.057e-10),
    16: (9.081e-4, 7.396e-10, 7.075e-4, 4.059e-10),
    32: (4.043e-3, 8.643e-10, 4.063e-4, 4.907e-10),
    48: (5.543e-3, 9.643e-10, None, None),
    64: (7.043e-3, 9.643e-10, 8.063e-4, 5.888e-10),
}


@pytest.mark.parametrize(("preset", "col"), [("10GbE-fit", 0), ("100GbIB-fit", 2)])
def test_fitted_presets_match_reference_table(preset: str, col: int) -> None:
    net = load_network(preset)
    assert isinstance(net, Fitted)
    expected = {p: row[col : col + 2] for p, row in PUBLISHED_FITS.items() if row[col] is not None}
    assert sorted(net.fits) == sorted(expected)
    for p, (a, b) in expected.items():
        c = net.costs(p)
        assert (c.allreduce.a, c.allreduce.b) == pytest.approx((a, b), rel=REL), p
        assert (c.reduce_scatter.a, c.reduce_scatter.b) == pytest.approx((a / 2, b / 2), rel=REL)
        assert (c.all_gather.a, c.all_gather.b) == pytest.approx((a / 2, b / 2), rel=REL)
        # a whole all-reduce of 25 MiB, straight from the table
        assert net.allreduce(25 * 2**20, p) == pytest.approx(a + b * 25 * 2**20, rel=REL)


def test_ib_fit_has_no_48_worker_entry() -> None:
    with pytest.raises(DearsimError, match="no fit for 48 workers"):
        load_network("100GbIB-fit").costs(48)


# --------------------------------------------------------------------------- specs


@pytest.mark.parametrize("name", ["10GbE", "100GbIB", "10GbE-fit", "100GbIB-fit"])
def test_every_preset_round_trips_through_its_spec(name: str) -> None:
    import json

    from dearsim.network import load_network, network_from_spec

    model = load_network(name)
    spec = model.spec()
    assert spec["label"] == name and spec["kind"] in ("alpha-beta", "fitted")
    assert json.loads(json.dumps(spec)) == spec  # JSON-ready
    again = network_from_spec(json.loads(json.dumps(spec)))
    assert again.spec() == spec and type(again) is type(model)
    for p in (1, 8, 16):
        try:
            assert again.costs(p) == model.costs(p)
        except DearsimError:
            pass  # a fitted table without that worker count, the same for both
    assert load_network(spec).spec() == spec  # load_network takes a spec too


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"kind": "torus"}, "unknown kind 'torus'"),
        ({"label": "x"}, "unknown kind None"),
        ({"kind": "alpha-beta", "alpha_s": -1, "beta_s_per_byte": 0}, "alpha_s must be"),
        ({"kind": "fitted", "fits": {}}, "non-empty 'fits'"),
        ({"kind": "fitted", "fits": {"x": {"allreduce": [0, 0]}}}, "not a worker count"),
    ],
)
def test_bad_specs_are_one_line_errors(spec: dict, match: str) -> None:
    from dearsim.network import network_from_spec

    with pytest.raises(DearsimError, match=match):
        network_from_spec(spec)


def test_a_new_kind_of_network_registers_its_spec() -> None:
    from dataclasses import dataclass

    from dearsim.network import (
        _KINDS,
        ZERO,
        LinearCosts,
        NetworkModel,
        network_from_spec,
        register_kind,
    )

    @dataclass(frozen=True)
    class Free(NetworkModel):
        name: str = "free"
        kind = "free"

        def costs(self, workers: int) -> LinearCosts:
            return LinearCosts(workers, ZERO, ZERO, ZERO)

        def spec(self) -> dict:
            return {"kind": self.kind, "label": self.name}

        @classmethod
        def from_spec(cls, spec):
            return cls(spec["label"])

    register_kind("free", Free.from_spec)
    try:
        assert network_from_spec({"kind": "free", "label": "lab"}) == Free("lab")
    finally:
        del _KINDS["free"]
