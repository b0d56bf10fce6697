"""Hierarchical topology (docs/model.md 2.5): the formulas, their reduction to the flat ones
with one GPU per node or one node, specs, the shipped topologies, and runs on it."""

from __future__ import annotations

import pytest

import dearsim
from dearsim import AlphaBeta, DearsimError, fast, schedules
from dearsim.network import (
    Hierarchical,
    Op,
    load_network,
    load_topology,
    network_from_spec,
    topology_names,
)

INTRA = AlphaBeta(1e-6, 1e-11, name="intra")
INTER = AlphaBeta(1e-5, 1e-10, name="inter")
OPS = (Op.ALLREDUCE, Op.REDUCE_SCATTER, Op.ALL_GATHER)


@pytest.mark.parametrize("algorithm", ["ring", "hierarchical"])
@pytest.mark.parametrize("p", [1, 2, 3, 8])
def test_one_gpu_per_node_is_the_inter_node_ring(algorithm, p):
    h = Hierarchical(1, INTRA, INTER, algorithm)
    assert h.costs(p) == INTER.costs(p)


@pytest.mark.parametrize("algorithm", ["ring", "hierarchical"])
@pytest.mark.parametrize("g", [1, 2, 4, 8])
def test_one_node_is_the_intra_node_ring(algorithm, g):
    h = Hierarchical(g, INTRA, INTER, algorithm, nodes=1)
    assert h.costs(g) == INTRA.costs(g)
    # and fewer workers than a node holds: one node, partly used
    assert Hierarchical(8, INTRA, INTER, algorithm).costs(g) == INTRA.costs(g)


def test_general_formulas_reduce_to_the_flat_ones():
    # the hierarchical line with a degenerate level equals the flat ring's numbers
    n = 12_345_678
    for g, nodes in ((1, 6), (6, 1)):
        h = Hierarchical(g, INTRA, INTER, nodes=nodes)
        flat = (INTER if g == 1 else INTRA).costs(g * nodes)
        i, e = INTRA.costs(g), INTER.costs(nodes)
        manual_ar = i.time(Op.REDUCE_SCATTER, n) + e.time(Op.ALLREDUCE, n / g) + i.time(
            Op.ALL_GATHER, n)
        assert manual_ar == pytest.approx(flat.time(Op.ALLREDUCE, n), rel=1e-12)
        assert h.costs(g * nodes).time(Op.ALLREDUCE, n) == flat.time(Op.ALLREDUCE, n)


def test_hierarchical_formulas_by_hand():
    # 2 nodes x 4 GPUs, one NIC per GPU; n = 8e6 B
    h = Hierarchical(4, INTRA, INTER)
    c = h.costs(8)
    n = 8e6
    rs_i = 3 * 1e-6 + 3 / 4 * n * 1e-11       # intra reduce-scatter of n over 4 GPUs
    ag_i = rs_i                                # intra all-gather (gamma = 0)
    ar_e = 2 * 1e-5 + 2 * 1 / 2 * (n / 4) * 1e-10   # inter all-reduce of n/4 over 2 nodes
    rs_e = 1e-5 + 1 / 2 * (n / 4) * 1e-10
    assert c.time(Op.ALLREDUCE, n) == pytest.approx(rs_i + ar_e + ag_i, rel=1e-12)
    assert c.time(Op.REDUCE_SCATTER, n) == pytest.approx(rs_i + rs_e, rel=1e-12)
    assert c.time(Op.ALL_GATHER, n) == pytest.approx(rs_e + ag_i, rel=1e-12)
    # RS + AG is the AR, as for a ring
    assert c.time(Op.REDUCE_SCATTER, n) + c.time(Op.ALL_GATHER, n) == pytest.approx(
        c.time(Op.ALLREDUCE, n), rel=1e-12)
    # one NIC per node: the 4 inter-node all-reduces of n/4 share it: n * b
    one = Hierarchical(4, INTRA, INTER, nics_per_node=1).costs(8)
    ar_e1 = 2 * 1e-5 + 2 * 1 / 2 * n * 1e-10
    assert one.time(Op.ALLREDUCE, n) == pytest.approx(rs_i + ar_e1 + ag_i, rel=1e-12)


def test_flat_ring_is_limited_by_its_slowest_hop():
    c = Hierarchical(4, INTRA, INTER, "ring").costs(8)
    assert c == AlphaBeta(1e-5, 1e-10).costs(8)  # every term from the slower (inter) level
    fast_inter = AlphaBeta(1e-7, 1e-12)
    assert Hierarchical(4, INTRA, fast_inter, "ring").costs(8) == INTRA.costs(8)


def test_layout_checks():
    h = Hierarchical(4, INTRA, INTER)
    assert h.layout(16) == (4, 4)
    assert h.layout(3) == (1, 3)
    with pytest.raises(DearsimError, match="do not fill nodes of 4"):
        h.costs(6)
    with pytest.raises(DearsimError, match="not 8"):
        Hierarchical(4, INTRA, INTER, nodes=3).costs(8)
    with pytest.raises(DearsimError, match="algorithm"):
        Hierarchical(4, INTRA, INTER, "tree")


def test_spec_round_trip():
    h = Hierarchical(4, INTRA, INTER, "ring", nodes=2, nics_per_node=1, name="x")
    again = network_from_spec(h.spec())
    assert again == h
    assert load_network(h.spec()).costs(8) == h.costs(8)


@pytest.mark.parametrize("name", ["dear-cluster-10GbE", "dear-cluster-100GbIB",
                                  "h100-nvlink-400GbIB"])
def test_shipped_topologies(name):
    assert name in topology_names()
    t = load_topology(name)
    assert t.algorithm == "hierarchical"
    assert load_topology(name, "ring").algorithm == "ring"
    c = t.costs(64)
    assert c.time(Op.ALLREDUCE, 1e8) > 0
    # the preset files name a source for every number
    from importlib import resources

    text = (resources.files("dearsim") / "presets" / "topologies" / f"{name}.yaml").read_text()
    for key in ("gpus_per_node:", "intra.alpha_s", "intra.beta_s_per_byte"):
        assert key in text


@pytest.mark.parametrize("name", list(schedules.names()))
def test_schedules_run_on_a_hierarchy_and_fast_agrees(name):
    tr = dearsim.Trace.from_layers([1e-3] * 6, [2e-3] * 6, [3_000_000] * 6)
    topo = load_topology("dear-cluster-10GbE")
    r = dearsim.simulate(tr, topo, 8, name, iterations=8)
    flat = dearsim.simulate(tr, topo.with_algorithm("ring"), 8, name, iterations=8)
    assert r.iteration_time_s > 0 and flat.iteration_time_s > 0
    f = fast.simulate(tr, topo, 8, name, iterations=8)
    assert f.iteration_time_s == pytest.approx(r.iteration_time_s, rel=1e-9)
