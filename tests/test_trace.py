"""Trace files: the dearsim CSVY format, plain CSV, and every bad input.

Every error must be a :class:`DearsimError` whose message names the file and, where there is
one, the line and the field.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dearsim.errors import DearsimError
from dearsim.trace import Trace, format_trace, load_trace, parse_trace, save_trace

HEADER = "name,fwd_ms,bwd_ms,bytes"


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def load_error(tmp_path: Path, text: str, name: str = "t.csv") -> str:
    """Load ``text`` from a file and return the DearsimError's message (the file is named)."""
    p = write(tmp_path, text, name)
    with pytest.raises(DearsimError) as info:
        load_trace(p)
    msg = str(info.value)
    assert str(p) in msg, msg
    assert "\n" not in msg, msg
    return msg


def csvy(header_lines: list[str], rows: str = f"{HEADER}\nl0,1,1,5\n") -> str:
    return "---\n" + "".join(line + "\n" for line in header_lines) + "---\n" + rows


# --------------------------------------------------------------------------- round trip


def sample_trace() -> Trace:
    return Trace.from_layers(
        fwd=[0.0012345678901, 0.0, 3.3e-5, 0.25],
        bwd=[0.0024691357802, 1e-9, 6.6e-5, 0.5],
        size=[4_194_304, 0, 123, 10**10],
        update=[1.1e-4, 0.0, 0.0, 7.77e-3],
        names=["conv1", "relu, inplace", "fc \"head\"", "embed"],
        name="toy-model",
        batch_size=32,
        meta={
            "model": "ToyNet",
            "dtype": "float32",
            "provenance": {"method": "synthesised", "how": "by hand", "seed": 7},
            "notes": "round-trip fixture",
        },
    )


def test_csvy_round_trip_keeps_values_and_metadata(tmp_path: Path) -> None:
    tr = sample_trace()
    path = tmp_path / "toy.csvy"
    save_trace(tr, path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    back = load_trace(path)

    assert back.num_layers == 4
    assert back.names == tr.names
    assert back.size == tr.size
    for a, b in zip(back.fwd + back.bwd + back.update, tr.fwd + tr.bwd + tr.update):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)
    assert back.name == "toy-model"
    assert back.batch_size == 32
    assert back.meta["format"] == "dearsim-trace"
    assert back.meta["version"] == 1
    assert back.meta["model"] == "ToyNet"
    assert back.meta["dtype"] == "float32"
    assert back.meta["notes"] == "round-trip fixture"
    prov = back.meta["provenance"]
    assert prov["method"] == "synthesised"
    assert prov["how"] == "by hand"
    assert prov["seed"] == 7  # free-form provenance keys survive
    assert back.source == str(path)


def test_round_trip_is_stable(tmp_path: Path) -> None:
    """Save, load, save again: the same trace, and from then on the same bytes (header key
    order may change once, from the Trace's meta order to the header schema's order)."""
    first, second = tmp_path / "a.csvy", tmp_path / "b.csvy"
    save_trace(sample_trace(), first)
    once = load_trace(first)
    save_trace(once, second)
    twice = load_trace(second)
    assert (once.names, once.fwd, once.bwd, once.size, once.update) == (
        twice.names, twice.fwd, twice.bwd, twice.size, twice.update
    )
    assert dict(once.meta) == dict(twice.meta)
    assert format_trace(twice) == second.read_text(encoding="utf-8")


def test_save_header_override(tmp_path: Path) -> None:
    path = tmp_path / "b.csvy"
    save_trace(sample_trace(), path, header={"model": "Other", "batch_size": 8})
    back = load_trace(path)
    assert back.meta["model"] == "Other"
    assert back.batch_size == 8


def test_save_rejects_bad_header_override(tmp_path: Path) -> None:
    # a header that the loader would refuse is refused before anything is written
    with pytest.raises(DearsimError, match="colour: unknown key"):
        save_trace(sample_trace(), tmp_path / "c.csvy", header={"colour": "red"})
    assert not (tmp_path / "c.csvy").exists()


# --------------------------------------------------------------------------- plain CSV


def test_plain_csv_without_update(tmp_path: Path) -> None:
    p = write(tmp_path, f"{HEADER}\nconv,1.5,3,1000\npool,0.25,0.5,0\nfc,2,4,4000\n", "net.csv")
    tr = load_trace(p)
    assert tr.names == ("conv", "pool", "fc")
    assert tr.fwd == pytest.approx((1.5e-3, 0.25e-3, 2e-3))
    assert tr.bwd == pytest.approx((3e-3, 0.5e-3, 4e-3))
    assert tr.size == (1000, 0, 4000)
    assert tr.update == (0.0, 0.0, 0.0)  # update defaults to 0
    assert tr.grad_layers == (0, 2)
    assert tr.name == "net"  # name from the file stem
    assert tr.batch_size is None
    assert dict(tr.meta) == {}
    assert tr.compute_time == pytest.approx(11.25e-3)


def test_plain_csv_with_update(tmp_path: Path) -> None:
    p = write(tmp_path, f"{HEADER},update_ms\na,1,2,8,0.5\nb,3,4,16,0.25\n")
    tr = load_trace(p)
    assert tr.update == pytest.approx((0.5e-3, 0.25e-3))
    assert tr.compute_time == pytest.approx((1 + 2 + 3 + 4 + 0.5 + 0.25) * 1e-3)


def test_column_order_does_not_matter(tmp_path: Path) -> None:
    a = load_trace(write(tmp_path, f"{HEADER},update_ms\nx,1,2,8,0.5\ny,3,4,0,0\n", "a.csv"))
    b = load_trace(
        write(tmp_path, "bytes,update_ms,bwd_ms,name,fwd_ms\n8,0.5,2,x,1\n0,0,4,y,3\n", "b.csv")
    )
    assert (a.names, a.fwd, a.bwd, a.size, a.update) == (b.names, b.fwd, b.bwd, b.size, b.update)


def test_blank_lines_whitespace_crlf_and_quoted_names(tmp_path: Path) -> None:
    text = 'name, fwd_ms ,bwd_ms,bytes\r\n\r\n"a,b", 1 ,2,3\r\n\r\nc,1,1,1e3\r\n'
    tr = load_trace(write(tmp_path, text))
    assert tr.names == ("a,b", "c")
    assert tr.size == (3, 1000)  # "1e3" is a whole number of bytes


def test_csvy_with_minimal_header(tmp_path: Path) -> None:
    tr = load_trace(write(tmp_path, csvy(["format: dearsim-trace", "version: 1"]), "m.csvy"))
    assert tr.name == "m"
    assert tr.batch_size is None
    assert tr.size == (5,)


def test_parse_trace_default_source_in_messages() -> None:
    with pytest.raises(DearsimError, match=r"^<trace>:2: field 'fwd_ms'"):
        parse_trace(f"{HEADER}\nl0,x,1,5\n")


# --------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.csv"
    with pytest.raises(DearsimError) as info:
        load_trace(p)
    assert str(p) in str(info.value)
    assert "not found" in str(info.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DearsimError, match="is a directory"):
        load_trace(tmp_path)


def test_binary_file(tmp_path: Path) -> None:
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DearsimError) as info:
        load_trace(p)
    assert str(p) in str(info.value) and "UTF-8" in str(info.value)


@pytest.mark.parametrize(
    ("row", "got"),
    [("l1,1,1", 3), ("l1,1,1,5,6", 5), ("l1", 1)],
)
def test_wrong_field_count_names_line(tmp_path: Path, row: str, got: int) -> None:
    msg = load_error(tmp_path, f"{HEADER}\nl0,1,1,5\n{row}\n")
    assert ":3:" in msg
    assert "expected 4 fields" in msg and f"got {got}" in msg


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    msg = load_error(tmp_path, f"{HEADER}\n\nl0,1,1,5\n\n\nl1,1,oops,5\n")
    assert ":6:" in msg and "'bwd_ms'" in msg


def test_line_numbers_count_the_yaml_header(tmp_path: Path) -> None:
    text = csvy(["format: dearsim-trace", "version: 1"], f"{HEADER}\nl0,1,1,5\nl1,1,1,-5\n")
    msg = load_error(tmp_path, text, "h.csvy")
    assert ":7:" in msg and "'bytes'" in msg  # ---, 2 keys, ---, header, l0, l1 = line 7


@pytest.mark.parametrize("column", ["fwd_ms", "bwd_ms", "update_ms"])
@pytest.mark.parametrize("value", ["abc", "", "1ms", "0x10"])
def test_non_numeric_time(tmp_path: Path, column: str, value: str) -> None:
    cols = ["name", "fwd_ms", "bwd_ms", "bytes", "update_ms"]
    vals = {"name": "l0", "fwd_ms": "1", "bwd_ms": "1", "bytes": "5", "update_ms": "0"}
    vals[column] = value
    text = ",".join(cols) + "\nok,1,1,5,0\n" + ",".join(vals[c] for c in cols) + "\n"
    msg = load_error(tmp_path, text)
    assert ":3:" in msg
    assert f"'{column}'" in msg
    assert "must be a number" in msg


@pytest.mark.parametrize("column", ["fwd_ms", "bwd_ms", "update_ms"])
def test_negative_time(tmp_path: Path, column: str) -> None:
    cols = ["name", "fwd_ms", "bwd_ms", "bytes", "update_ms"]
    vals = {"name": "l0", "fwd_ms": "1", "bwd_ms": "1", "bytes": "5", "update_ms": "0"}
    vals[column] = "-0.5"
    text = ",".join(cols) + "\n" + ",".join(vals[c] for c in cols) + "\n"
    msg = load_error(tmp_path, text)
    assert ":2:" in msg and f"'{column}'" in msg and ">= 0" in msg and "-0.5" in msg


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
@pytest.mark.parametrize("column", ["fwd_ms", "bwd_ms"])
def test_nan_and_inf_times(tmp_path: Path, column: str, value: str) -> None:
    row = {"fwd_ms": f"l0,{value},1,5", "bwd_ms": f"l0,1,{value},5"}[column]
    msg = load_error(tmp_path, f"{HEADER}\n{row}\n")
    assert ":2:" in msg and f"'{column}'" in msg and "finite" in msg


@pytest.mark.parametrize("value", ["5.5", "abc", "nan", "inf", "1e400", "", "0.1"])
def test_non_integer_bytes(tmp_path: Path, value: str) -> None:
    msg = load_error(tmp_path, f"{HEADER}\nl0,1,1,5\nl1,1,1,{value}\n")
    assert ":3:" in msg and "'bytes'" in msg and "whole number" in msg


@pytest.mark.parametrize("value", ["-1", "-1e6", "-4.0"])
def test_negative_bytes(tmp_path: Path, value: str) -> None:
    msg = load_error(tmp_path, f"{HEADER}\nl0,1,1,{value}\n")
    assert ":2:" in msg and "'bytes'" in msg and ">= 0" in msg


def test_empty_name(tmp_path: Path) -> None:
    msg = load_error(tmp_path, f"{HEADER}\n ,1,1,5\n")
    assert ":2:" in msg and "'name'" in msg and "empty" in msg


def test_unknown_column(tmp_path: Path) -> None:
    msg = load_error(tmp_path, f"{HEADER},params\nl0,1,1,5,3\n")
    assert ":1:" in msg and "unknown column 'params'" in msg


def test_unknown_column_after_yaml_header(tmp_path: Path) -> None:
    text = csvy(["format: dearsim-trace", "version: 1"], "name,fwd_ms,bwd_us,bytes\nl0,1,1,5\n")
    msg = load_error(tmp_path, text, "u.csvy")
    assert ":5:" in msg and "unknown column 'bwd_us'" in msg


@pytest.mark.parametrize("missing", ["name", "fwd_ms", "bwd_ms", "bytes"])
def test_missing_column(tmp_path: Path, missing: str) -> None:
    cols = [c for c in ("name", "fwd_ms", "bwd_ms", "bytes") if c != missing]
    row = ",".join({"name": "l0", "fwd_ms": "1", "bwd_ms": "1", "bytes": "5"}[c] for c in cols)
    msg = load_error(tmp_path, ",".join(cols) + "\n" + row + "\n")
    assert ":1:" in msg and "missing column" in msg and missing in msg


def test_duplicate_column(tmp_path: Path) -> None:
    msg = load_error(tmp_path, f"{HEADER},bytes\nl0,1,1,5,5\n")
    assert ":1:" in msg and "twice" in msg


def test_header_only_table(tmp_path: Path) -> None:
    msg = load_error(tmp_path, f"{HEADER}\n\n\n")
    assert ":1:" in msg and "no layer rows" in msg


def test_csvy_with_header_but_no_rows(tmp_path: Path) -> None:
    msg = load_error(tmp_path, csvy(["format: dearsim-trace", "version: 1"], f"{HEADER}\n"))
    assert ":5:" in msg and "no layer rows" in msg  # ---, 2 keys, ---, CSV header on line 5


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    msg = load_error(tmp_path, text)
    assert "no CSV header" in msg


def test_csvy_with_nothing_after_header(tmp_path: Path) -> None:
    msg = load_error(tmp_path, csvy(["format: dearsim-trace", "version: 1"], ""))
    assert "no CSV header" in msg


def test_unclosed_yaml_header(tmp_path: Path) -> None:
    text = f"---\nformat: dearsim-trace\nversion: 1\n{HEADER}\nl0,1,1,5\n"
    msg = load_error(tmp_path, text)
    assert ":1:" in msg and "never closed" in msg


def test_unknown_header_key(tmp_path: Path) -> None:
    text = csvy(["format: dearsim-trace", "version: 1", "model: x", "colour: red"])
    msg = load_error(tmp_path, text, "k.csvy")
    assert ":5:" in msg and "colour" in msg and "unknown key" in msg


@pytest.mark.parametrize("version", ["3", "0", "'1'", "one"])
def test_wrong_version(tmp_path: Path, version: str) -> None:
    text = csvy(["format: dearsim-trace", f"version: {version}"])
    msg = load_error(tmp_path, text, "v.csvy")
    assert ":3:" in msg and "version" in msg


def test_wrong_format_name(tmp_path: Path) -> None:
    msg = load_error(tmp_path, csvy(["version: 1", "format: other-trace"]), "f.csvy")
    assert ":3:" in msg and "format" in msg


def test_missing_format_key(tmp_path: Path) -> None:
    msg = load_error(tmp_path, csvy(["version: 1"]), "f.csvy")
    assert "format" in msg and "required" in msg.lower()


@pytest.mark.parametrize("value", ["0", "-4", "2.5", "many", "[32]"])
def test_bad_batch_size(tmp_path: Path, value: str) -> None:
    text = csvy(["format: dearsim-trace", "version: 1", "model: m", f"batch_size: {value}"])
    msg = load_error(tmp_path, text, "b.csvy")
    assert ":5:" in msg and "batch_size" in msg


def test_boolean_batch_size_is_rejected(tmp_path: Path) -> None:
    """Regression: pydantic's lax mode once took a YAML ``true`` as batch size 1."""
    text = csvy(["format: dearsim-trace", "version: 1", "batch_size: true"])
    msg = load_error(tmp_path, text, "b.csvy")
    assert ":4:" in msg and "batch_size" in msg


def test_bad_provenance_method(tmp_path: Path) -> None:
    text = csvy(["format: dearsim-trace", "version: 1", "provenance:", "  method: guessed"])
    msg = load_error(tmp_path, text, "p.csvy")
    assert ":5:" in msg and "provenance.method" in msg


def test_invalid_yaml_in_header(tmp_path: Path) -> None:
    msg = load_error(tmp_path, csvy(["format: dearsim-trace", "version: [1"]), "y.csvy")
    assert "invalid YAML" in msg


@pytest.mark.parametrize("body", [[], ["- a list"], ["just text"]])
def test_header_not_a_mapping(tmp_path: Path, body: list[str]) -> None:
    msg = load_error(tmp_path, csvy(body), "n.csvy")
    assert "mapping" in msg


def test_error_reported_for_first_bad_row(tmp_path: Path) -> None:
    msg = load_error(tmp_path, f"{HEADER}\nl0,1,1,5\nl1,-1,1,5\nl2,x,1,5\n")
    assert ":3:" in msg and "'fwd_ms'" in msg


def test_line_number_after_multiline_quoted_name(tmp_path: Path) -> None:
    """Regression: a quoted name spanning two lines once shifted later line numbers by one."""
    msg = load_error(tmp_path, f'{HEADER}\n"two\nlines",1,1,5\nl1,1,x,5\n')
    assert ":4:" in msg


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    """Regression: Excel's 'CSV UTF-8' (with a BOM) was once an 'unknown column'."""
    p = tmp_path / "excel.csv"
    p.write_bytes(("\ufeff" + f"{HEADER}\nl0,1,1,5\n").encode("utf-8"))
    assert load_trace(p).names == ("l0",)


# --------------------------------------------------------------------------- Trace API


def test_from_layers_validates() -> None:
    with pytest.raises(DearsimError, match="at least one layer"):
        Trace.from_layers([], [], [])
    with pytest.raises(DearsimError, match="'bwd' has 1 entries"):
        Trace.from_layers([1.0, 1.0], [1.0], [1, 1])
    with pytest.raises(DearsimError, match=r"layer 1: 'fwd'"):
        Trace.from_layers([1.0, -1.0], [1.0, 1.0], [1, 1])
    with pytest.raises(DearsimError, match=r"layer 0: 'bwd'"):
        Trace.from_layers([1.0], [math.nan], [1])
    with pytest.raises(DearsimError, match=r"layer 0: 'size'"):
        Trace.from_layers([1.0], [1.0], [1.5])
    with pytest.raises(DearsimError, match="batch_size"):
        Trace.from_layers([1.0], [1.0], [1], batch_size=0)


# --------------------------------------------------------------------------- per-tensor columns

TENSOR_HEADER = f"{HEADER},tensor_bytes,tensor_names"


def breakdown_trace() -> Trace:
    return Trace.from_layers(
        fwd=[1e-3, 2e-4, 3e-3, 1e-5],
        bwd=[2e-3, 4e-4, 6e-3, 1e-5],
        size=[4 * (64 * 27 + 64), 0, 4 * (1000 * 10 + 10), 12],
        update=[1e-5, 0.0, 2e-5, 0.0],
        names=["conv1", "relu", "fc", "ln"],
        name="tensors",
        tensors=[[4 * 64 * 27, 4 * 64], None, [4 * 1000 * 10, 4 * 10], [4, 8]],
        tensor_names=[["weight", "bias"], None, ["weight", "bias"], ["", "b"]],
    )


def test_breakdown_round_trip_is_exact(tmp_path: Path) -> None:
    tr = breakdown_trace()
    path = tmp_path / "t.csvy"
    save_trace(tr, path)
    text = path.read_text(encoding="utf-8")
    assert "\nversion: 2\n" in text
    assert "name,fwd_ms,bwd_ms,bytes,update_ms,tensor_bytes,tensor_names\n" in text
    assert "conv1,1.0,2.0,7168,0.01,6912;256,weight;bias\n" in text
    assert "relu,0.2,0.4,0,0.0,,\n" in text
    back = load_trace(path)
    assert back.has_breakdown and back.num_tensors == 6
    assert back.tensors == tr.tensors == ((6912, 256), (), (40000, 40), (4, 8))
    assert back.tensor_names == tr.tensor_names
    assert back.tensor_names[3] == ("", "b")
    assert (back.names, back.fwd, back.bwd, back.size, back.update) == (
        tr.names, tr.fwd, tr.bwd, tr.size, tr.update
    )
    assert back.meta["version"] == 2
    assert format_trace(back) == text


def test_trace_without_breakdown_is_still_written_as_version_1(tmp_path: Path) -> None:
    text = format_trace(sample_trace())
    assert "\nversion: 1\n" in text and "tensor_" not in text
    back = parse_trace(text)
    assert not back.has_breakdown
    assert back.tensors == ((4_194_304,), (), (123,), (10**10,))
    assert back.num_tensors == 3


def test_unnamed_breakdown_writes_no_names_column() -> None:
    tr = Trace.from_layers([1e-3, 1e-3], [1e-3, 1e-3], [12, 5], tensors=[[4, 8], None])
    text = format_trace(tr)
    assert ",tensor_bytes\n" in text and "tensor_names" not in text
    back = parse_trace(text)
    # a layer without a breakdown is written as its one tensor, which reads back the same
    assert back.tensors == ((4, 8), (5,)) and back.tensor_names == (("", ""), ("",))
    assert back.has_breakdown


def test_plain_csv_with_tensor_columns(tmp_path: Path) -> None:
    text = (
        f"{TENSOR_HEADER}\n"
        "conv,1,2,1028,1024;4,weight;bias\n"
        "pool,0.5,0.5,0,,\n"
        "fc, 1 ,2,4000,,\n"
        "ln,1,1,16,  8 ; 8 , weight ; bias \n"
    )
    tr = load_trace(write(tmp_path, text))
    assert tr.has_breakdown
    assert tr.tensors == ((1024, 4), (), (4000,), (8, 8))
    assert tr.tensor_names == (("weight", "bias"), (), ("",), ("weight", "bias"))
    assert tr.num_tensors == 5


def test_plain_csv_tensor_bytes_only_and_any_column_order(tmp_path: Path) -> None:
    text = "tensor_bytes,bytes,name,fwd_ms,bwd_ms\n3;5,8,a,1,1\n,0,b,1,1\n"
    tr = load_trace(write(tmp_path, text))
    assert tr.tensors == ((3, 5), ()) and tr.tensor_names == (("", ""), ())


def test_all_empty_tensor_column_is_no_breakdown(tmp_path: Path) -> None:
    tr = load_trace(write(tmp_path, f"{HEADER},tensor_bytes\na,1,1,8,\n"))
    assert not tr.has_breakdown and tr.tensors == ((8,),)


def test_csvy_version_2_reads_tensor_columns(tmp_path: Path) -> None:
    text = csvy(["format: dearsim-trace", "version: 2"], f"{TENSOR_HEADER}\nl0,1,1,5,2;3,w;b\n")
    tr = load_trace(write(tmp_path, text, "v2.csvy"))
    assert tr.tensors == ((2, 3),) and tr.tensor_names == (("w", "b"),)


def test_csvy_version_2_without_tensor_columns_is_fine(tmp_path: Path) -> None:
    tr = load_trace(write(tmp_path, csvy(["format: dearsim-trace", "version: 2"]), "v.csvy"))
    assert tr.size == (5,) and not tr.has_breakdown


def test_csvy_version_1_rejects_tensor_columns(tmp_path: Path) -> None:
    text = csvy(["format: dearsim-trace", "version: 1"], f"{HEADER},tensor_bytes\nl0,1,1,5,5\n")
    msg = load_error(tmp_path, text, "old.csvy")
    assert ":5:" in msg and "'tensor_bytes'" in msg and "version: 2" in msg


def test_tensor_sum_mismatch_names_file_line_and_field(tmp_path: Path) -> None:
    p = write(tmp_path, f"{TENSOR_HEADER}\nl0,1,1,5,2;3,w;b\nl1,1,1,12,2;8,w;b\n", "x.csv")
    with pytest.raises(DearsimError) as info:
        load_trace(p)
    assert str(info.value) == (
        f"{p}:3: field 'tensor_bytes': tensors sum to 10 bytes but 'bytes' is 12"
    )


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        ("4;x", "tensor 2 must be a whole number of bytes, got 'x'"),
        ("4;1.5", "tensor 2 must be a whole number"),
        ("0;5", "tensor 1 must be > 0 bytes, got '0'"),
        ("-1;6", "tensor 1 must be > 0 bytes"),
        ("5;", "tensor 2 is empty"),
        (";5", "tensor 1 is empty"),
        ("5", "tensors sum to 5 bytes but 'bytes' is 8"),
    ],
)
def test_bad_tensor_bytes(tmp_path: Path, value: str, expect: str) -> None:
    msg = load_error(tmp_path, f"{HEADER},tensor_bytes\nok,1,1,1,1\nl1,1,1,8,{value}\n")
    assert ":3: field 'tensor_bytes': " in msg and expect in msg, msg


def test_tensor_bytes_on_a_layer_without_gradient(tmp_path: Path) -> None:
    msg = load_error(tmp_path, f"{HEADER},tensor_bytes\nl0,1,1,0,4\n")
    assert ":2: field 'tensor_bytes': tensors sum to 4 bytes but 'bytes' is 0" in msg


def test_tensor_names_count_must_match(tmp_path: Path) -> None:
    msg = load_error(tmp_path, f"{TENSOR_HEADER}\nl0,1,1,5,2;3,weight\n")
    assert ":2: field 'tensor_names': 1 names for 2 tensors" in msg


def test_tensor_names_need_tensor_bytes(tmp_path: Path) -> None:
    msg = load_error(tmp_path, f"{TENSOR_HEADER}\nl0,1,1,5,,weight\n")
    assert ":2: field 'tensor_names'" in msg and "'tensor_bytes' is empty" in msg
    msg = load_error(tmp_path, f"{HEADER},tensor_names\nl0,1,1,5,weight\n")
    assert ":1:" in msg and "'tensor_names' needs a 'tensor_bytes' column" in msg


def test_unwritable_tensor_name_is_refused() -> None:
    tr = Trace.from_layers([1.0], [1.0], [8], tensors=[[4, 4]], tensor_names=[["a;b", "c"]])
    with pytest.raises(DearsimError, match="tensor name 'a;b' cannot be written"):
        format_trace(tr)


def test_version_1_header_cannot_hold_a_breakdown() -> None:
    with pytest.raises(DearsimError, match="version 1 cannot hold"):
        format_trace(breakdown_trace(), header={"version": 1})
    # version 2 may be asked for without a breakdown
    assert "\nversion: 2\n" in format_trace(sample_trace(), header={"version": 2})


def test_to_frame_has_the_tensor_columns() -> None:
    pytest.importorskip("pandas")
    f = breakdown_trace().to_frame()
    assert list(f["tensor_bytes"]) == ["6912;256", "", "40000;40", "4;8"]
    assert list(f["tensor_names"]) == ["weight;bias", "", "weight;bias", ";b"]
    assert list(f["tensors"]) == [2, 0, 2, 2]
    assert "tensor_bytes" not in sample_trace().to_frame().columns


def test_a_fifo_is_refused_not_read(tmp_path) -> None:
    import os

    fifo = tmp_path / "trace.csv"
    os.mkfifo(fifo)
    with pytest.raises(DearsimError, match="not a regular file"):
        load_trace(fifo)


@given(st.lists(st.sampled_from([0, 0, 1, 7, 4096, 3_000_000]), min_size=1, max_size=30),
       st.data())
def test_buckets_by_prefix_sums_equal_the_plain_count(sizes, data):
    """make_bucket and buckets_from_runs (bisect on grad_layers, prefix sums) against the
    definition: the gradient layers inside the range, their bytes summed one by one."""
    from dearsim.schedules.base import buckets_from_runs, make_bucket

    n = len(sizes)
    t = Trace.from_layers([1e-3] * n, [1e-3] * n, sizes)
    lo = data.draw(st.integers(0, n - 1))
    hi = data.draw(st.integers(lo, n - 1))
    grads = [i for i in range(lo, hi + 1) if sizes[i] > 0]
    if not grads:
        with pytest.raises(ValueError, match="no gradient"):
            make_bucket(t, lo, hi)
        assert buckets_from_runs(t, [list(range(lo, hi + 1))]) == []
        return
    b = make_bucket(t, lo, hi)
    assert (b.first, b.last, b.nbytes) == (grads[0], grads[-1], sum(sizes[i] for i in grads))
    assert buckets_from_runs(t, [list(range(hi, lo - 1, -1)), []]) == [b]
    assert t.size_prefix[-1] == sum(sizes) and len(t.size_prefix) == n + 1
