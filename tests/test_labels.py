"""Labels from headers and sidecars; mismatched ids are listed in the error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bigbird_genomics.io.labels import (
    LabelError,
    LabelTable,
    check_ids,
    header_fields,
    header_label_names,
    header_labels,
    header_split,
    read_label_groups,
    read_label_table,
)


def test_header_fields_skip_the_id_and_free_text():
    assert header_fields("prom_1 label=1 split=train human TATA") == {
        "label": "1",
        "split": "train",
    }


def test_header_single_and_multi_labels():
    assert header_labels("r label=1", "here").tolist() == [1.0]
    assert header_labels("r labels=0,1,0", "here").tolist() == [0.0, 1.0, 0.0]
    assert header_labels("r desc", "here") is None
    assert header_label_names("r labels=0,1,0", 3) == ["label_0", "label_1", "label_2"]
    assert header_label_names("r label=1", 1) == ["label"]


def test_header_label_must_be_binary():
    with pytest.raises(LabelError, match=r"here: label value '2' is not 0 or 1"):
        header_labels("r label=2", "here")


def test_header_split_values():
    assert header_split("r split=val", "here") == "val"
    assert header_split("r", "here") is None
    with pytest.raises(LabelError, match="split='dev' must be one of train, val, test"):
        header_split("r split=dev", "here")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_tsv_and_csv_sidecars(tmp_path):
    tsv = read_label_table(write(tmp_path, "l.tsv", "id\tCTCF\tDNase\na\t1\t0\nb\t0\t1\n"))
    csv = read_label_table(write(tmp_path, "l.csv", "id,CTCF,DNase\na,1,0\nb,0,1\n"))
    for table in (tsv, csv):
        assert table.names == ["CTCF", "DNase"]
        assert table.values["b"].tolist() == [0.0, 1.0]


def test_sidecar_without_id_column(tmp_path):
    with pytest.raises(LabelError, match=r"line 1: header must have column\(s\) id"):
        read_label_table(write(tmp_path, "l.tsv", "name\tx\na\t1\n"))


def test_sidecar_bad_value_names_line_and_column(tmp_path):
    with pytest.raises(LabelError, match=r"l.tsv: line 3, column 'x': label value 'yes'"):
        read_label_table(write(tmp_path, "l.tsv", "id\tx\na\t1\nb\tyes\n"))


def test_sidecar_header_and_row_shape_errors(tmp_path):
    """A repeated column would keep only its last cell; an extra cell would be dropped."""
    with pytest.raises(LabelError, match=r"line 1: column\(s\) 'lab' appear more than once"):
        read_label_table(write(tmp_path, "l.tsv", "id\tlab\tlab\nr1\t1\t0\n"))
    with pytest.raises(LabelError, match=r"line 3: 3 cells but the header has 2 columns"):
        read_label_table(write(tmp_path, "l.tsv", "id\tlab\nr1\t1\nr2\t1\t7\n"))
    trailing = read_label_table(write(tmp_path, "t.tsv", "id\tlab\nr1\t1\t\n"))  # empty cell
    assert trailing.values["r1"].tolist() == [1.0]
    with pytest.raises(LabelError, match=r"line 1: column 3 of the header has no name"):
        read_label_table(write(tmp_path, "l.tsv", "id\tlab\t\nr1\t1\t\n"))
    # a spreadsheet's byte-order mark is not part of the first column's name
    table = read_label_table(write(tmp_path, "l.csv", "\ufeffid,lab\nr1,1\n"))
    assert table.names == ["lab"] and table.values["r1"].tolist() == [1.0]


def test_class_labels_for_multiclass(tmp_path):
    assert header_labels("r class=3 split=train", "w").tolist() == [3.0]
    assert header_label_names("r class=3", 1) == ["class"]
    with pytest.raises(LabelError, match=r"class '300' is not a class index"):
        header_labels("r class=300", "w")
    with pytest.raises(LabelError, match="label= and class=; keep one"):
        header_labels("r label=1 class=2", "w")
    table = read_label_table(write(tmp_path, "c.tsv", "id\tclass\na\t4\nb\t0\n"))
    assert table.names == ["class"] and table.values["a"].tolist() == [4.0]
    with pytest.raises(LabelError, match="must be the only label column"):
        read_label_table(write(tmp_path, "c.tsv", "id\tclass\tCTCF\na\t4\t1\n"))


def test_sidecar_duplicate_id(tmp_path):
    with pytest.raises(LabelError, match=r"line 3: id 'a' listed twice \(first on line 2\)"):
        read_label_table(write(tmp_path, "l.tsv", "id\tx\na\t1\na\t0\n"))


def test_missing_and_extra_ids_are_listed():
    table = LabelTable(["x"], {"a": np.ones(1), "z": np.ones(1)}, Path("l.tsv"))
    with pytest.raises(LabelError) as caught:
        check_ids(table, ["a", "b", "c"], Path("in.fa"))
    message = str(caught.value)
    assert "2 record id(s) of in.fa have no labels: b, c" in message
    assert "1 labelled id(s) are not in in.fa: z" in message


def test_long_id_lists_are_shortened():
    table = LabelTable(["x"], {}, Path("l.tsv"))
    ids = [f"r{i}" for i in range(25)]
    with pytest.raises(LabelError, match="r9 and 15 more"):
        check_ids(table, ids, Path("in.fa"))


def test_label_groups(tmp_path):
    groups = read_label_groups(write(tmp_path, "g.tsv", "label\tgroup\nCTCF\tTF\nDNase\tDHS\n"))
    assert groups == {"CTCF": "TF", "DNase": "DHS"}
    with pytest.raises(LabelError, match="group"):
        read_label_groups(write(tmp_path, "bad.tsv", "label\tkind\nCTCF\tTF\n"))


def test_sidecar_errors_count_comment_lines(tmp_path: Path) -> None:
    """Line numbers in messages are the file's, also below '#' comment lines."""
    path = tmp_path / "labels.tsv"
    path.write_text("# made by hand\n# 0/1 per profile\nid\tlabel\nr1\t1\n# note\nr2\t7\n")
    with pytest.raises(LabelError, match=r"labels.tsv: line 6, column 'label': label value '7'"):
        read_label_table(path)
    path.write_text("# made by hand\nid\tlabel\nr1\t1\nr1\t0\n")
    with pytest.raises(LabelError, match=r"line 4: id 'r1' listed twice \(first on line 3\)"):
        read_label_table(path)
    path.write_text("# made by hand\nid\n")
    with pytest.raises(LabelError, match=r"line 2: no label columns besides 'id'"):
        read_label_table(path)
