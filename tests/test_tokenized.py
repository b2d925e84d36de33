"""Tokenized data sets: windows, labels, splits, metadata, tokenizer checks, atomic writes."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigbird_genomics.errors import UserError
from bigbird_genomics.io.labels import LabelError
from bigbird_genomics.tokens.build import _assign_splits, _window_tokens, tokenize_fasta
from bigbird_genomics.tokens.kmers import KmerTokenizer, TokenizerConfigError
from bigbird_genomics.tokens.store import (
    DatasetFormatError,
    TokenizedDataset,
    TokenizerMismatchError,
    sha256_file,
)

RNG = np.random.default_rng(7)


def random_dna(length: int) -> str:
    return "".join(RNG.choice(list("ACGT"), size=length))


@pytest.fixture
def labelled_fasta(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    sequences = {f"r{i}": random_dna(30 + 7 * i) for i in range(10)}
    sequences["r3"] = sequences["r3"][:10] + "NNN" + sequences["r3"][13:]
    lines = []
    for i, (name, sequence) in enumerate(sequences.items()):
        lines.append(f">{name} label={i % 2}" + (" split=test" if name == "r0" else ""))
        lines.append(sequence)
    path = tmp_path / "in.fa"
    path.write_text("\n".join(lines) + "\n")
    return path, sequences


def test_examples_are_windows_of_their_records(tmp_path, labelled_fasta):
    fasta, sequences = labelled_fasta
    tokenizer = KmerTokenizer(k=4, stride=1)
    data = TokenizedDataset(
        tokenize_fasta(fasta, tmp_path / "ds", tokenizer, max_tokens=16, overlap_bp=3)
    )
    window_bp = tokenizer.max_bases(16)
    assert len(data) == data.meta["num_examples"] > len(sequences)
    for i in range(len(data)):
        record_id, start, end = data.record(i)
        tokens = data.tokens(i)
        assert tokens.dtype == np.int64 and 0 < len(tokens) <= 16
        assert end - start <= window_bp
        assert tokens.tolist() == tokenizer.encode(sequences[record_id][start:end]).tolist()
        assert data.labels(i).tolist() == [float(int(record_id[1:]) % 2)]
    assert data.lengths.tolist() == [len(data.tokens(i)) for i in range(len(data))]
    assert data.label_names == ["label"] and data.label_groups == {}
    assert data.tokenizer == tokenizer


def test_windows_off_the_stride_grid_are_encoded_from_their_own_start(tmp_path):
    fasta = tmp_path / "in.fa"
    sequence = random_dna(50)
    fasta.write_text(f">only\n{sequence}\n")
    tokenizer = KmerTokenizer(k=3, stride=3)
    data = TokenizedDataset(tokenize_fasta(fasta, tmp_path / "ds", tokenizer, max_tokens=4))
    assert data.record(len(data) - 1)[1] % 3 != 0  # last window is moved back off the grid
    for i in range(len(data)):
        _, start, end = data.record(i)
        assert data.tokens(i).tolist() == tokenizer.encode(sequence[start:end]).tolist()


def test_splits_are_per_record_seeded_and_exact(tmp_path, labelled_fasta):
    fasta, _ = labelled_fasta
    tokenizer = KmerTokenizer(k=3)
    first = TokenizedDataset(tokenize_fasta(fasta, tmp_path / "a", tokenizer, max_tokens=8))
    again = TokenizedDataset(tokenize_fasta(fasta, tmp_path / "b", tokenizer, max_tokens=8))
    other = TokenizedDataset(tokenize_fasta(fasta, tmp_path / "c", tokenizer, max_tokens=8, seed=1))
    split_of = {}
    for name in ("train", "val", "test"):
        for i in first.split_indices(name):
            record_id = first.record(int(i))[0]
            assert split_of.setdefault(record_id, name) == name  # no record straddles splits
    assert split_of["r0"] == "test"  # from the header
    assert first.meta["record_split_counts"] == {"train": 7, "val": 1, "test": 2}
    for name in ("train", "val", "test"):
        assert first.split_indices(name).tolist() == again.split_indices(name).tolist()
    assert any(
        first.split_indices(n).tolist() != other.split_indices(n).tolist() for n in ("val", "test")
    )


@pytest.mark.parametrize("num_records", [3, 5, 7])
def test_a_split_with_fraction_zero_gets_no_records(num_records):
    """Rounding 0.5 * n up twice must not push records into a split that asked for none."""
    splits = _assign_splits(
        [None] * num_records, (0.0, 0.5, 0.5), seed=0, has_examples=np.ones(num_records, bool)
    )
    counts = np.bincount(splits, minlength=3).tolist()
    assert counts[0] == 0 and sum(counts) == num_records
    assert abs(counts[1] - counts[2]) <= 1


def test_gzip_and_plain_give_identical_tokens(tmp_path, labelled_fasta):
    fasta, _ = labelled_fasta
    gz = tmp_path / "in.fa.gz"
    gz.write_bytes(gzip.compress(fasta.read_bytes()))
    tokenizer = KmerTokenizer(k=6)
    plain = TokenizedDataset(tokenize_fasta(fasta, tmp_path / "p", tokenizer, max_tokens=10))
    packed = TokenizedDataset(tokenize_fasta(gz, tmp_path / "g", tokenizer, max_tokens=10))
    assert len(plain) == len(packed)
    for i in range(len(plain)):
        assert plain.tokens(i).tolist() == packed.tokens(i).tolist()
        assert plain.record(i) == packed.record(i)


def test_meta_records_tokenizer_and_source_checksums(tmp_path, labelled_fasta):
    fasta, _ = labelled_fasta
    out = tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=5, stride=2), max_tokens=12)
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["k"], meta["stride"], meta["token_dtype"]) == (5, 2, "uint16")
    assert meta["vocab_hash"] == KmerTokenizer(k=5).vocab_hash
    assert meta["sources"]["fasta"]["sha256"] == sha256_file(fasta)
    assert meta["num_n"] == 3 and meta["max_tokens"] == 12


def test_mismatched_tokenizer_is_refused_with_advice(tmp_path, labelled_fasta):
    fasta, _ = labelled_fasta
    data = TokenizedDataset(tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=6)))
    data.check_tokenizer(KmerTokenizer(k=6).to_dict())
    with pytest.raises(TokenizerMismatchError) as caught:
        data.check_tokenizer(KmerTokenizer(k=4, stride=4).to_dict())
    message = str(caught.value)
    assert "tokenized with k=6 stride=1" in message and "uses k=4 stride=4" in message
    assert "--k 4 --stride 4" in message


def test_sidecar_labels_and_groups(tmp_path, labelled_fasta):
    fasta, sequences = labelled_fasta
    labels = tmp_path / "labels.tsv"
    labels.write_text(
        "id\tCTCF\tDNase\n" + "".join(f"{name}\t1\t{i % 2}\n" for i, name in enumerate(sequences))
    )
    groups = tmp_path / "groups.tsv"
    groups.write_text("label\tgroup\nDNase\tDHS\nCTCF\tTF\n")
    data = TokenizedDataset(
        tokenize_fasta(
            fasta,
            tmp_path / "ds",
            KmerTokenizer(k=3),
            labels_table=labels,
            label_groups_table=groups,
        )
    )
    assert data.label_names == ["CTCF", "DNase"]
    assert data.label_groups == {"CTCF": "TF", "DNase": "DHS"}
    record_id = data.record(0)[0]
    assert data.labels(0).tolist() == [1.0, float(list(sequences).index(record_id) % 2)]
    assert "labels" in data.meta["sources"] and "label_groups" in data.meta["sources"]


def test_header_multi_labels_named_by_groups_table(tmp_path):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a labels=1,0\nACGTACGT\n>b labels=0,1\nACGTTT\n")
    groups = tmp_path / "groups.tsv"
    groups.write_text("label\tgroup\nCTCF\tTF\nH3K27ac\thistone\n")
    data = TokenizedDataset(
        tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=3), label_groups_table=groups)
    )
    assert data.label_names == ["CTCF", "H3K27ac"]
    assert data.labels(0).tolist() == [1.0, 0.0]


def test_missing_and_extra_label_ids_leave_no_output(tmp_path, labelled_fasta):
    fasta, _ = labelled_fasta
    labels = tmp_path / "labels.tsv"
    labels.write_text("id\tx\nr0\t1\nr1\t0\nghost\t1\n")
    with pytest.raises(LabelError) as caught:
        tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=3), labels_table=labels)
    message = str(caught.value)
    assert "8 record id(s)" in message and "r2, r3" in message and "not in" in message
    assert "ghost" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fa", "labels.tsv"]


def test_inconsistent_header_labels(tmp_path):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a label=1\nACGTACGT\n>b\nACGTTT\n")
    with pytest.raises(LabelError, match="record 'b' .* has 0 header label"):
        tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=3))


def test_unlabelled_data_and_short_records(tmp_path):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nACGTACGT\n>tiny\nAC\n")
    data = TokenizedDataset(tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=3)))
    assert data.labels(0) is None and data.label_names == []
    assert data.meta["skipped_records"] == ["tiny"] and len(data) == 1


def test_bad_settings_are_refused(tmp_path, labelled_fasta):
    fasta, _ = labelled_fasta
    with pytest.raises(TokenizerConfigError, match="overlap"):
        tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=3), max_tokens=4, overlap_bp=6)
    with pytest.raises(TokenizerConfigError, match="split fractions"):
        tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=3), split_fractions=(0.5, 0.1, 0.1))


def test_data_set_folder_is_readable_by_others(tmp_path, labelled_fasta):
    """mkdtemp makes 0700 folders; a data set is shared by training, prediction and other users."""
    fasta, _ = labelled_fasta
    out = tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=3))
    assert out.stat().st_mode & 0o777 == 0o755
    assert (out / "meta.json").stat().st_mode & 0o044 == 0o044


def test_rewrites_a_data_set_but_not_other_folders(tmp_path, labelled_fasta):
    fasta, _ = labelled_fasta
    out = tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=3))
    tokenize_fasta(fasta, out, KmerTokenizer(k=4))
    assert TokenizedDataset(out).tokenizer.k == 4
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a tokenized data set"):
        tokenize_fasta(fasta, precious, KmerTokenizer(k=3))
    assert (precious / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "in.fa", "precious"]


def test_opening_something_else_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetFormatError, match="no meta.json"):
        TokenizedDataset(tmp_path)


def test_pickles_by_path(tmp_path, labelled_fasta):
    fasta, _ = labelled_fasta
    data = TokenizedDataset(tokenize_fasta(fasta, tmp_path / "ds", KmerTokenizer(k=3)))
    blob = pickle.dumps(data)
    assert len(blob) < 2000
    assert pickle.loads(blob).tokens(1).tolist() == data.tokens(1).tolist()


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 6).flatmap(lambda k: st.tuples(st.just(k), st.integers(1, k))),
    st.integers(0, 300),
    st.integers(1, 40),
    st.data(),
)
def test_window_tokens_equal_encoding_each_window(k_stride, length, max_tokens, data):
    k, stride = k_stride
    tokenizer = KmerTokenizer(k, stride)
    window_bp = tokenizer.max_bases(max_tokens)
    overlap = data.draw(st.integers(0, window_bp - 1))
    sequence = np.frombuffer(random_dna(max(length, k)).encode(), dtype=np.uint8)
    tokens, starts, ends, counts = _window_tokens(tokenizer, sequence, window_bp, overlap)
    assert counts.sum() == len(tokens)
    pieces = np.split(tokens, np.cumsum(counts)[:-1])
    for piece, start, end in zip(pieces, starts, ends, strict=True):
        assert piece.tolist() == tokenizer.encode(sequence[start:end]).tolist()


def test_an_output_folder_of_other_files_is_refused_before_any_work(tmp_path):
    """Checked first (the FASTA below does not even exist), and again before the rename."""
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and is not a tokenized data set"):
        tokenize_fasta(tmp_path / "missing.fa", out, KmerTokenizer(k=3))
    assert (out / "notes.txt").read_text() == "mine"


def test_records_with_another_kind_of_header_label_are_refused(tmp_path):
    """`label=1` and `class=1` both give one label: mixing them would be read as one column."""
    fasta = tmp_path / "mixed.fa"
    fasta.write_text(">a label=1\nACGTACGT\n>b class=1\nACGTACGT\n")
    message = r"record 'b'.*1 header label\(s\) \['class'\] but the first .* 1 \['label'\]"
    with pytest.raises(LabelError, match=message):
        tokenize_fasta(fasta, tmp_path / "out", KmerTokenizer(k=3))
