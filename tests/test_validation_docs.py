"""docs/validation.md prints the current run's tables as the files in
``examples/calibration/run3`` give them (``summarize.py`` and ``comm_timeline.py``
recompute them here), so the page cannot drift from its data."""

from __future__ import annotations

import functools
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAL = ROOT / "examples" / "calibration"
RUN = CAL / "run3"
DOC = (ROOT / "docs" / "validation.md").read_text(encoding="utf-8")
sys.path.insert(0, str(ROOT / "examples" / "calibration"))

import comm_sensitivity  # noqa: E402
import comm_timeline  # noqa: E402
import fits_table  # noqa: E402
import summarize  # noqa: E402


@pytest.mark.parametrize("run", ["run3", "run4"])
def test_the_error_tables_are_the_run_files(run: str) -> None:
    tables = summarize.tables(CAL / run)
    assert tables.count("\n| ") > 40  # 40 rows, the summary, the headers
    assert tables in DOC


@pytest.mark.parametrize("run, label", [("run3", "third (11-25 12:06 UTC)"),
                                        ("run4", "fourth (11-25 12:16 UTC)")])
def test_the_headline_table_is_each_runs_summary(run: str, label: str) -> None:
    rows = summarize.rows(CAL / run)
    assert len(rows) == 40 and all(r["repeats"] == 3 for r in rows)
    lines = summarize.tables(CAL / run).splitlines()
    summary = next(line for line in lines if line.startswith("| all 40 |"))
    cells = [c.strip() for c in summary.split("|")[3:-1]]
    assert f"| {label} | " + " | ".join(cells) + " |" in DOC


def test_the_third_run_is_under_predicted_in_every_row_and_column() -> None:
    rows = summarize.rows(RUN)
    assert all(float(r[f"e_{s}"]) < 0 for r in rows for s, _ in summarize.SHOWN)


def test_the_comm_log_timeline_is_the_run3_log() -> None:
    pytest.importorskip("pandas")
    text = comm_timeline.timeline(str(RUN / "comm-log" / "validate-mlp-b32.comm.csv"),
                                  str(RUN / "gloo-loopback-2.yaml"))
    assert "reducescatter" in text and "allreduce" in text
    assert text.strip() in DOC


def test_the_repeatability_table_is_the_five_fits() -> None:
    import yaml

    for k in range(1, 6):
        fit = yaml.safe_load((CAL / "repeatability" / f"n{k}.yaml").read_text())["fits"][0]
        cells = []
        for op in ("allreduce", "reduce_scatter", "all_gather"):
            cells += [f"{fit[op]['a_s'] * 1e6:.0f}", f"{fit[op]['b_s_per_byte'] * 1e9:.3f}"]
        assert f"   | {k} | " + " | ".join(cells) + " |" in DOC


@pytest.mark.parametrize("sub", ["run5", "run5/mean", "run6", "run6/mean", "run7",
                                 "run7/mean"])
def test_the_fifth_runs_summaries_are_its_files(sub: str) -> None:
    """The medians' fit and the means' fit: the same measured times, other predictions."""
    tables = summarize.tables(CAL / sub)
    assert tables[tables.index("| rows |"):] in DOC
    rows = summarize.rows(CAL / sub)
    assert len(rows) == 40 and all(r["repeats"] == 3 for r in rows)


def test_the_stat_repeatability_table_is_the_fits() -> None:
    pytest.importorskip("yaml")
    assert fits_table.table(CAL / "repeat-stats") in DOC
    spread = fits_table.table(CAL / "repeat-stats-100").splitlines()[-2:]
    assert spread[0].split("|")[3].strip() == "1.95x" and spread[1].split("|")[3].strip() == "1.90x"
    assert "1.95x from the medians and 1.90x from the means" in DOC


def test_the_interleaving_table_is_the_fits() -> None:
    pytest.importorskip("yaml")
    dirs = {name: CAL / rel for name, rel in (
        ("one", "repeat-rounds/one"), ("ten", "repeat-rounds/ten"),
        ("repeat-stats", "repeat-stats"), ("repeat-stats-100", "repeat-stats-100"))}
    text = fits_table.steadiness(dirs)
    assert text in DOC
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line.split("|")
            for line in text.splitlines()[2:]}
    assert rows[("one (8)", "mean")][5].strip() == "29 %"
    assert rows[("ten (8)", "mean")][5].strip() == "13 %"
    assert "13 % instead of 29 %" in DOC


@pytest.mark.parametrize(("run", "label", "closer", "worst"), [
    ("run5", "fifth (12-07 21:07 UTC)", [40, 39, 40, 35], None),
    ("run6", "sixth (12-07 21:31 UTC, sizes interleaved)", [40, 38, 40, 31],
     ("mlp b32", "dear", "31 % off (`mlp b32`, DeAR)")),
    ("run7", "seventh (12-07 22:00 UTC, the sixth again)", [33, 29, 33, 19],
     ("convhead b16", "wfbp", "over-predicted by 50 % with the means' fit")),
    ("run8", "eighth (12-07 22:58 UTC, the sixth again)", [38, 34, 31, 28],
     ("convhead b16", "wfbp", "per-tensor WFBP (+49.8 % with the means' fit")),
    ("run9", "ninth (12-07 23:19 UTC, the eighth with interference in 5 passes)",
     [39, 37, 33, 28], ("mlp b32", "dear", "`mlp b32`'s DeAR with 4 groups (+35.7 %")),
])
def test_a_run_measured_once_predicted_with_both_fits(run, label, closer, worst) -> None:
    """The fifth to seventh runs: the same measured times under the medians' fit and the
    means' fit; the headline rows, how many rows each fit wins, and the worst row."""
    med, mean = summarize.rows(CAL / run), summarize.rows(CAL / run / "mean")
    assert len(med) == len(mean) == 40
    assert [r["measured"] for r in med] == [r["measured"] for r in mean]
    wins = [sum(abs(b[f"e_{s}"]) < abs(a[f"e_{s}"]) for a, b in zip(med, mean))
            for s, _ in summarize.SHOWN]
    assert wins == closer
    assert "closer in {}, {}, {} and {} of the 40 rows".format(*closer) in " ".join(DOC.split())
    for d, name in ((CAL / run, f"{label}, median fit"),
                    (CAL / run / "mean", f"{label.split(' (')[0]}, mean fit, same measurements")):
        summary = summarize.tables(d).splitlines()
        cells = next(x for x in summary if x.startswith("| all 40 |")).split("|")[3:-1]
        assert f"| {name} | " + " | ".join(c.strip() for c in cells) + " |" in DOC
    if worst is not None:
        row = max(mean, key=lambda r: abs(float(r["e_serial_cal_"])))
        assert (row["workload"], row["schedule"]) == worst[:2]
        assert worst[2] in " ".join(DOC.split())


TWO_WAY_RUNS = (("run5", "fifth"), ("run6", "sixth"), ("run7", "seventh"))
#: (means' fit, the folder of the predictions again, its label), the first run's folder
FITS = ((False, "two-way", "medians' fit", ""), (True, "two-way/mean", "means' fit", "mean"))
YS = [0, 0.5, 1, 1.5, 2, 3, 4, 8]


def test_the_two_way_summary_is_the_repredicted_files() -> None:
    """The fifth to seventh runs predicted again with both interferences (two_way.sh)."""
    for run, name in TWO_WAY_RUNS:
        for _, sub, fit, first in FITS:
            rows = summarize.rows(CAL / run / sub, summarize.TWO_WAY)
            assert len(rows) == 40
            # the measured times are the run's own, untouched; so are the older predictions
            before = summarize.rows(CAL / run / first)
            assert [r["measured"] for r in rows] == [r["measured"] for r in before]
            assert [r["p_cal_x_"] for r in rows] == [r["p_cal_x_"] for r in before]
            lines = summarize.tables(CAL / run / sub, summarize.TWO_WAY).splitlines()
            cells = next(x for x in lines if x.startswith("| all 40 |")).split("|")[3:-1]
            assert f"| {name}, {fit} | " + " | ".join(c.strip() for c in cells) + " |" in DOC


@functools.lru_cache(maxsize=1)
def _sensitivity() -> dict[tuple[str, bool], dict[str, tuple[float, float]]]:
    out = {}
    for run, _ in TWO_WAY_RUNS:
        for mean, *_ in FITS:
            table = comm_sensitivity.table(CAL / run, mean, [float(y) for y in YS])
            cells = {}
            for line in table.splitlines()[2:]:
                key, val = (c.strip() for c in line.strip("|").split("|"))
                med, worst = val.rstrip(" %").split(" / ")
                cells[key] = (float(med), float(worst))
            out[(run, mean)] = cells
    return out


def test_the_sensitivity_to_y_is_recomputed() -> None:
    sens = _sensitivity()
    order = [(run, mean) for run, _ in TWO_WAY_RUNS for mean, *_ in FITS]
    for key in [f"{y:g}" for y in YS] + ["no overlap + terms"]:
        line = f"| {key} | " + " | ".join(
            "{:.1f} / {:.1f} %".format(*sens[o][key]) for o in order) + " |"
        assert line in DOC, line
    # the y = 0 row is the summary's + terms + x column, the last the no-overlap bound
    for run, name in TWO_WAY_RUNS:
        for mean, _, fit, _ in FITS:
            assert "| {name}, {fit} | {:.1f} / {:.1f} % |".format(
                *sens[(run, mean)]["0"], name=name, fit=fit) in DOC
    # the y chosen on the other two runs (lowest sum of their medians), and what it gives
    flat = " ".join(DOC.split())
    for mean, *_ in FITS:
        chosen, got = [], []
        for run, _ in TWO_WAY_RUNS:
            others = [r for r, _ in TWO_WAY_RUNS if r != run]
            best = min(YS, key=lambda y: sum(sens[(r, mean)][f"{y:g}"][0] for r in others))
            chosen.append(f"{best:g}")
            got.append("{:.1f} / {:.1f} %".format(*sens[(run, mean)][f"{best:g}"]))
        if mean:
            assert (f"it is {chosen[0]}, {chosen[1]} and {chosen[2]} and gives {got[0]}, "
                    f"{got[1]} and {got[2]}") in flat
        else:
            assert "(4, 8 and 1)" in flat and chosen == ["4", "8", "1"]


def _check_run_with_both(run: str, name: str) -> dict[bool, str]:
    """A run whose validate files carry the two-way columns: its summary rows with both
    interferences and its table of fixed ``y`` (means' fit, medians' fit) are in the page.
    Returns the sensitivity tables by fit (True: the means')."""
    for sub, fit in (("", "medians' fit"), ("mean", "means' fit")):
        lines = summarize.tables(CAL / run / sub, summarize.TWO_WAY).splitlines()
        cells = next(x for x in lines if x.startswith("| all 40 |")).split("|")[3:-1]
        assert f"| {name}, {fit} | " + " | ".join(c.strip() for c in cells) + " |" in DOC
    tables = {mean: comm_sensitivity.table(CAL / run, mean, [float(y) for y in YS])
              for mean in (True, False)}
    for key in [f"{y:g}" for y in YS] + ["no overlap + terms"]:
        cells = [next(line for line in tables[m].splitlines()
                      if line.startswith(f"| {key} |")).split("|")[2].strip()
                 for m in (True, False)]
        assert f"| {key} | {cells[0]} | {cells[1]} |" in DOC
    return tables


def test_the_eighth_run_with_both_interferences() -> None:
    """The eighth run's validate files carry the two-way predictions themselves; y = 2 was
    chosen from the fifth to seventh runs before it."""
    flat = " ".join(DOC.split())
    tables = _check_run_with_both("run8", "eighth")
    y2 = next(line for line in tables[True].splitlines() if line.startswith("| 2 |"))
    assert y2.split("|")[2].strip() == "12.2 / 42.7 %"
    assert "`y = 2` gives 12.2 / 42.7 % with the means' fit" in flat
    # the y chosen on the fifth to seventh runs with the means' fit
    sens = _sensitivity()
    runs = [r for r, _ in TWO_WAY_RUNS]
    assert min(YS, key=lambda y: sum(sens[(r, True)][f"{y:g}"][0] for r in runs)) == 2


def test_the_terms_steadiness_table_is_the_files() -> None:
    pytest.importorskip("yaml")
    import terms_table

    text = terms_table.table(CAL / "terms-steadiness")
    assert text in DOC
    reps = terms_table.load(CAL / "terms-steadiness")
    assert sorted(reps) == [(m, s) for m in ("convhead-b16", "mlp-b32")
                            for s in ("rounds-1", "rounds-5")]
    assert all(len(v) == 5 for v in reps.values())
    assert all(r["rounds"] == 5 for r in reps[("mlp-b32", "rounds-5")])


def test_the_ninth_run() -> None:
    """The loop with collect interference --rounds 5; its files carry every column."""
    flat = " ".join(DOC.split())
    docs = [yaml_terms(p) for p in sorted((CAL / "run9").glob("*-interference.yaml"))]
    assert docs and all(d["rounds"] == 5 for d in docs)
    for sub in ("", "mean"):
        assert "\n".join(summarize.tables(CAL / "run9" / sub).strip().splitlines()[-7:]) in DOC
    _check_run_with_both("run9", "ninth")
    mean = summarize.rows(CAL / "run9" / "mean", summarize.TWO_WAY)
    med = statistics.median(abs(r["e_cal_xy_"]) for r in mean)
    bound = statistics.median(abs(r["e_serial_cal_"]) for r in mean)
    assert round(med, 1) == 9.9 and round(bound, 1) == 10.3
    assert "9.9 against 10.3 %" in flat


def yaml_terms(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))["interference"]
