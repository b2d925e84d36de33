"""k-mer tokenizer: vocabulary, encoding against a plain-Python reference, decode, windows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigbird_genomics.tokens import kmers
from bigbird_genomics.tokens.kmers import (
    CLS_ID,
    NUM_SPECIAL,
    PAD_ID,
    UNK_ID,
    KmerTokenizer,
    TokenizerConfigError,
    plan_windows,
)


def reference_encode(sequence: str, k: int, stride: int) -> list[int]:
    """The obvious per-k-mer loop the vectorised encoder must agree with."""
    out = []
    for start in range(0, len(sequence) - k + 1, stride):
        kmer = sequence[start : start + k].upper()
        if set(kmer) <= set("ACGT"):
            out.append(NUM_SPECIAL + int("".join(str("ACGT".index(c)) for c in kmer), 4))
        else:
            out.append(UNK_ID)
    return out


@st.composite
def tokenizer_and_sequence(draw, alphabet: str = "ACGT"):
    k = draw(st.integers(1, 8))
    stride = draw(st.integers(1, k))
    sequence = draw(st.text(alphabet=alphabet, min_size=0, max_size=200))
    return KmerTokenizer(k, stride), sequence


def test_special_ids_and_first_kmers():
    tokenizer = KmerTokenizer(k=6)
    vocabulary = tokenizer.vocabulary()
    assert vocabulary[:5] == ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]
    assert (PAD_ID, CLS_ID, UNK_ID) == (0, 1, 4)
    assert vocabulary[5] == "AAAAAA" and vocabulary[6] == "AAAAAC" and vocabulary[-1] == "TTTTTT"
    assert tokenizer.vocab_size == 5 + 4**6 == len(vocabulary)
    assert tokenizer.encode("AAAAAC").tolist() == [6]


def test_encode_returns_int64_and_compact_is_uint16():
    tokenizer = KmerTokenizer(k=3)
    assert tokenizer.encode("ACGTA").dtype == np.int64
    assert tokenizer.encode_compact("ACGTA").dtype == np.uint16
    assert KmerTokenizer(k=8).token_dtype == np.uint32  # 4^8 + 5 ids do not fit in uint16


@pytest.mark.parametrize("k", [7, 8, 9])
def test_last_kmers_get_the_largest_ids(k):
    """Ids near 4^k + 5 must not wrap around in the encoder's working integer type."""
    tokenizer = KmerTokenizer(k=k)
    ids = tokenizer.encode("T" * k + "G")  # T..T and T..TG: the last and 4th-to-last k-mer
    assert ids.tolist() == [tokenizer.vocab_size - 1, tokenizer.vocab_size - 2]
    assert tokenizer.decode(ids) == "T" * k + "G"


@settings(max_examples=150, deadline=None)
@given(tokenizer_and_sequence(alphabet="ACGTacgtNRYX"))
def test_encode_matches_reference(case):
    tokenizer, sequence = case
    ids = tokenizer.encode(sequence)
    assert ids.tolist() == reference_encode(sequence, tokenizer.k, tokenizer.stride)
    assert len(ids) == tokenizer.num_tokens(len(sequence))


@settings(max_examples=150, deadline=None)
@given(tokenizer_and_sequence())
def test_decode_round_trip(case):
    tokenizer, sequence = case
    ids = tokenizer.encode(sequence)
    covered = tokenizer.max_bases(len(ids))
    assert tokenizer.decode(ids) == sequence[:covered]
    assert covered <= len(sequence) and len(sequence) - covered < tokenizer.k + tokenizer.stride - 1


@settings(max_examples=100, deadline=None)
@given(tokenizer_and_sequence(alphabet="ACGTN"))
def test_n_positions_decode_as_n_and_known_bases_survive(case):
    tokenizer, sequence = case
    decoded = tokenizer.decode(tokenizer.encode(sequence))
    for position, base in enumerate(decoded):
        if sequence[position] == "N":
            assert base == "N"
        else:
            assert base in ("N", sequence[position])  # N only if no clean k-mer covers it


def test_n_makes_every_overlapping_kmer_unknown():
    ids = KmerTokenizer(k=3).encode("AAANAAA")
    assert ids.tolist() == [5, UNK_ID, UNK_ID, UNK_ID, 5]


def test_long_sequence_spanning_chunks_matches_reference(monkeypatch):
    monkeypatch.setattr(kmers, "_CHUNK_BASES", 16)
    rng = np.random.default_rng(0)
    sequence = "".join(rng.choice(list("ACGTN"), size=500, p=[0.24, 0.24, 0.24, 0.24, 0.04]))
    for k, stride in [(6, 1), (6, 6), (5, 2), (1, 1)]:
        ids = KmerTokenizer(k, stride).encode(sequence)
        assert ids.tolist() == reference_encode(sequence, k, stride)


def test_sequence_shorter_than_k_gives_no_tokens():
    tokenizer = KmerTokenizer(k=6)
    assert tokenizer.encode("ACGTA").size == 0 and tokenizer.decode([]) == ""
    assert tokenizer.num_tokens(5) == 0 and tokenizer.max_bases(0) == 0


def test_num_tokens_and_max_bases_are_inverse():
    for k, stride in [(6, 1), (6, 6), (4, 3)]:
        tokenizer = KmerTokenizer(k, stride)
        for tokens in range(1, 40):
            assert tokenizer.num_tokens(tokenizer.max_bases(tokens)) == tokens
            assert tokenizer.num_tokens(tokenizer.max_bases(tokens) + stride - 1) == tokens


def test_decode_refuses_special_tokens():
    with pytest.raises(ValueError, match="special tokens"):
        KmerTokenizer(k=3).decode([CLS_ID, 5])


@pytest.mark.parametrize(("k", "stride"), [(0, 1), (13, 1), (3, 0), (3, 4)])
def test_bad_k_or_stride_is_refused(k, stride):
    with pytest.raises(TokenizerConfigError, match="must be between"):
        KmerTokenizer(k, stride)


def test_dict_round_trip_and_hash():
    tokenizer = KmerTokenizer(k=4, stride=2)
    again = KmerTokenizer.from_dict(tokenizer.to_dict())
    assert again == tokenizer and again.vocab_hash == tokenizer.vocab_hash
    assert KmerTokenizer(k=5).vocab_hash != tokenizer.vocab_hash
    tampered = dict(tokenizer.to_dict(), vocab_hash="0" * 16)
    with pytest.raises(TokenizerConfigError, match="vocabulary hash"):
        KmerTokenizer.from_dict(tampered)


def test_plan_windows_edges():
    assert plan_windows(0, 10, 0) == []
    assert plan_windows(7, 10, 2) == [(0, 7)]
    assert plan_windows(10, 10, 2) == [(0, 10)]
    assert plan_windows(20, 10, 0) == [(0, 10), (10, 20)]
    # the last window moves back to end at the record end
    assert plan_windows(25, 10, 0) == [(0, 10), (10, 20), (15, 25)]
    assert plan_windows(22, 10, 4) == [(0, 10), (6, 16), (12, 22)]
    with pytest.raises(TokenizerConfigError, match="smaller than the window"):
        plan_windows(100, 10, 10)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3000), st.integers(1, 600), st.data())
def test_plan_windows_cover_every_base_with_full_windows(length, window, data):
    overlap = data.draw(st.integers(0, window - 1))
    windows = plan_windows(length, window, overlap)
    covered = np.zeros(length, dtype=bool)
    for (start, end), following in zip(windows, [*windows[1:], None], strict=False):
        assert 0 <= start < end <= length
        assert end - start == min(window, length)
        covered[start:end] = True
        if following is not None:
            assert following[0] - start <= window - overlap  # at least the asked overlap
            assert following[0] > start
    assert covered.all()
