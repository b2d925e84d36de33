"""k-mer tokenization of DNA: a fixed vocabulary, vectorised encoding, and windows.

The vocabulary is five special tokens followed by all 4^k k-mers in lexicographic ACGT order:
`[PAD]=0, [CLS]=1, [SEP]=2, [MASK]=3, [UNK]=4`, then `AAA..A=5`, `AAA..C=6`, ... A k-mer
that contains anything but A, C, G, T (N, or an ambiguity code) becomes `[UNK]`.
stride 1 gives overlapping DNABERT-style tokens, stride k non-overlapping
Nucleotide-Transformer-style ones. Bases after the last whole k-mer at the stride are not
tokenized (at most stride - 1 + k - 1 of them, see `num_tokens`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from itertools import product
from typing import Any

import numpy as np

from bigbird_genomics.errors import UserError

PAD_ID, CLS_ID, SEP_ID, MASK_ID, UNK_ID = 0, 1, 2, 3, 4
SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")
NUM_SPECIAL = len(SPECIAL_TOKENS)
BASES = b"ACGT"
MAX_K = 12  # 4^12 = 16.7 M k-mers: larger vocabularies are not useful for an embedding table

# Anything but A/C/G/T (either case) makes a k-mer [UNK].
_ACGT_BOTH_CASES = BASES + BASES.lower()
_IS_UNKNOWN = np.ones(256, dtype=bool)
_IS_UNKNOWN[np.frombuffer(_ACGT_BOTH_CASES, dtype=np.uint8)] = False
# Encode long sequences in slices that fit in cache; measured best on E. coli at 64-128 K.
_CHUNK_BASES = 1 << 16


class TokenizerConfigError(UserError, ValueError):
    """k, stride or window settings that cannot work."""


def _as_bytes_array(sequence: str | bytes | bytearray | np.ndarray) -> np.ndarray:
    if isinstance(sequence, np.ndarray):
        if sequence.dtype != np.uint8:
            raise TypeError(f"sequence array must be uint8 ASCII, got {sequence.dtype}")
        return sequence
    if isinstance(sequence, str):
        sequence = sequence.encode("ascii")
    return np.frombuffer(sequence, dtype=np.uint8)


def _window_any(flags: np.ndarray, width: int) -> np.ndarray:
    """out[i] = flags[i:i+width].any(), by doubling (log2(width) passes instead of width)."""
    span, acc = 1, flags
    while span * 2 <= width:
        acc = acc[:-span] | acc[span:]
        span *= 2
    if span < width:  # cover the rest with a second, shifted window of the same span
        rest = width - span
        acc = acc[: len(acc) - rest] | acc[rest:]
    return acc


def _base_codes(bases: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A,C,G,T (either case) -> 0,1,2,3 by bit arithmetic on the ASCII code, in `dtype`.

    ((b >> 1) ^ (b >> 2)) & 3 maps A=65, C=67, G=71, T=84 (and a, c, g, t) to 0..3; other
    bytes give some code too and must be masked by the caller. Arithmetic instead of a lookup
    table because numpy's fancy indexing costs ~5 ns per base, over the whole 50 Mbp/s budget;
    widened first because numpy vectorises 16/32-bit shifts but not 8-bit ones.
    """
    wide = bases.astype(dtype)
    codes = wide >> 1
    wide >>= 2
    codes ^= wide
    codes &= 3
    return codes


def _window_codes(codes: np.ndarray, k: int) -> np.ndarray:
    """out[i] = base-4 number of codes[i:i+k], combining k-mers by doubling.

    A loop over the k offsets costs k passes; joining 1-, 2-, 4-mers ... costs ~log2(k)+popcount
    passes, which is what keeps k=6 stride 1 above 50 Mbp/s on one core.
    """
    pieces: dict[int, np.ndarray] = {1: codes}
    span = 1
    while span * 2 <= k:
        prev = pieces[span]
        joined = prev[:-span] << (2 * span)
        joined |= prev[span:]
        pieces[span * 2] = joined
        span *= 2
    result, width = None, 0
    for size in sorted(pieces, reverse=True):
        if width + size > k:
            continue
        piece = pieces[size]
        if result is None:
            result, width = piece, size
        else:  # append `size` more bases to the right of the `width` already joined
            result = result[: len(result) - size] << (2 * size)
            result |= piece[width:]
            width += size
    assert result is not None
    return result


class KmerTokenizer:
    """Maps DNA to k-mer token ids and back; knows nothing of models."""

    def __init__(self, k: int = 6, stride: int = 1) -> None:
        if not 1 <= int(k) <= MAX_K:
            raise TokenizerConfigError(f"k-mer size k={k} must be between 1 and {MAX_K}")
        if not 1 <= int(stride) <= int(k):
            raise TokenizerConfigError(
                f"stride={stride} must be between 1 and k={k} (a larger stride skips bases)"
            )
        self.k = int(k)
        self.stride = int(stride)
        self.vocab_size = NUM_SPECIAL + 4**self.k
        # Token arrays on disk use the smallest unsigned type that holds every id.
        self.token_dtype = np.dtype(np.uint16 if self.vocab_size <= 1 << 16 else np.uint32)

    def __repr__(self) -> str:
        return f"KmerTokenizer(k={self.k}, stride={self.stride})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KmerTokenizer) and (self.k, self.stride) == (
            other.k,
            other.stride,
        )

    def __hash__(self) -> int:
        return hash((self.k, self.stride))

    # --- vocabulary ---------------------------------------------------------------------
    def kmer_strings(self) -> list[str]:
        """All k-mers in id order (id = index + NUM_SPECIAL)."""
        return ["".join(letters) for letters in product("ACGT", repeat=self.k)]

    def reverse_complement_ids(self) -> np.ndarray:
        """`table[id]` = id of the reverse complement k-mer; special tokens map to themselves."""
        codes = np.arange(4**self.k)
        digits = (codes[:, None] >> (2 * np.arange(self.k))) & 3  # base 4 digits, last base first
        # A<->T, C<->G is 3 - code in ACGT order; reading the digits last-first reverses.
        complement = ((3 - digits) << (2 * np.arange(self.k - 1, -1, -1))).sum(axis=1)
        return np.concatenate([np.arange(NUM_SPECIAL), complement + NUM_SPECIAL])

    def vocabulary(self) -> list[str]:
        """Every token string in id order: specials, then k-mers."""
        return list(SPECIAL_TOKENS) + self.kmer_strings()

    @property
    def vocab_hash(self) -> str:
        """sha256 of what fixes every id: special tokens, alphabet order, k, [UNK] rule.

        Two tokenizers agree on ids iff their hashes agree. Hashing this definition rather
        than the 4^k token strings keeps it instant for large k.
        """
        definition = (
            f"specials={','.join(SPECIAL_TOKENS)};alphabet={BASES.decode()};k={self.k};"
            "order=lexicographic;unknown=any-non-ACGT"
        )
        return hashlib.sha256(definition.encode("ascii")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description, stored in data sets and checkpoints."""
        return {
            "type": "kmer",
            "k": self.k,
            "stride": self.stride,
            "vocab_size": self.vocab_size,
            "vocab_hash": self.vocab_hash,
            "special_tokens": list(SPECIAL_TOKENS),
            "unknown": "k-mers containing anything but ACGT -> [UNK]",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KmerTokenizer:
        if data.get("type", "kmer") != "kmer":
            raise TokenizerConfigError(f"not a k-mer tokenizer description: {data!r}")
        tokenizer = cls(k=int(data["k"]), stride=int(data.get("stride", 1)))
        stored = data.get("vocab_hash")
        if stored is not None and stored != tokenizer.vocab_hash:
            raise TokenizerConfigError(
                f"tokenizer description k={tokenizer.k} has vocabulary hash {stored}, but this "
                f"version of bigbird-genomics builds {tokenizer.vocab_hash}: the ids differ; "
                "re-tokenize the data with this version"
            )
        return tokenizer

    def describe(self) -> str:
        return f"k={self.k} stride={self.stride} (vocabulary hash {self.vocab_hash})"

    # --- sizes --------------------------------------------------------------------------
    def num_tokens(self, num_bases: int) -> int:
        """Tokens produced for `num_bases` bases (no special tokens)."""
        if num_bases < self.k:
            return 0
        return (num_bases - self.k) // self.stride + 1

    def max_bases(self, num_tokens: int) -> int:
        """Bases that give exactly `num_tokens` tokens with none left over."""
        if num_tokens <= 0:
            return 0
        return (num_tokens - 1) * self.stride + self.k

    # --- encode / decode ----------------------------------------------------------------
    def encode(self, sequence: str | bytes | bytearray | np.ndarray) -> np.ndarray:
        """Token ids (int64, no special tokens) for an ASCII DNA sequence."""
        return self.encode_compact(sequence).astype(np.int64)

    def encode_compact(self, sequence: str | bytes | bytearray | np.ndarray) -> np.ndarray:
        """Like `encode` but in `token_dtype` (uint16 for k <= 7): what data sets store."""
        bases = _as_bytes_array(sequence)
        count = self.num_tokens(len(bases))
        out = np.empty(count, dtype=self.token_dtype)
        # Slices start on the stride grid and overlap by k-1 bases, so they tile exactly.
        tokens_per_chunk = max(1, _CHUNK_BASES // self.stride)
        for first in range(0, count, tokens_per_chunk):
            last = min(count, first + tokens_per_chunk)
            start = first * self.stride
            stop = (last - 1) * self.stride + self.k
            out[first:last] = self._encode_slice(bases[start:stop])
        return out

    def _encode_slice(self, bases: np.ndarray) -> np.ndarray:
        # Work in the narrowest type that holds every id (2k bits + NUM_SPECIAL, i.e. the token
        # dtype): uint16 halves memory traffic for k <= 7; at k = 8 the top ids would wrap.
        ids = _window_codes(_base_codes(bases, self.token_dtype), self.k)[:: self.stride]
        ids += NUM_SPECIAL
        # Fast check for the usual upper-case ACGT slice (four SIMD compares beat a lookup
        # table); N, lower case or anything else takes the slower exact path.
        upper_acgt = bases == 65
        for letter in b"CGT":
            upper_acgt |= bases == letter
        if not upper_acgt.all():
            unknown = _IS_UNKNOWN.take(bases)
            ids[_window_any(unknown, self.k)[:: self.stride]] = UNK_ID
        return ids

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Bases covered by the tokens of `encode`; bases seen only through [UNK] become N.

        Only for tests and inspection: [PAD]/[CLS]/[SEP]/[MASK] have no bases and are refused.
        """
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return ""
        if ((ids < NUM_SPECIAL) & (ids != UNK_ID)).any() or (ids >= self.vocab_size).any():
            raise ValueError("decode takes k-mer ids and [UNK] only (strip special tokens first)")
        out = np.full(self.max_bases(len(ids)), ord("N"), dtype=np.uint8)
        known = np.flatnonzero(ids != UNK_ID)
        if known.size:
            index = ids[known] - NUM_SPECIAL
            shifts = 2 * np.arange(self.k - 1, -1, -1)
            letters = np.frombuffer(BASES, dtype=np.uint8)[(index[:, None] >> shifts) & 3]
            positions = known[:, None] * self.stride + np.arange(self.k)
            out[positions] = letters
        return out.tobytes().decode("ascii")

    def token_strings(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        vocabulary = self.vocabulary()
        return [vocabulary[int(i)] for i in ids]


def plan_windows(length_bp: int, window_bp: int, overlap_bp: int = 0) -> list[tuple[int, int]]:
    """Half-open (start, end) windows of at most `window_bp` covering a record of `length_bp`.

    Windows start every `window_bp - overlap_bp` bases; the last one is moved back to end at
    the record end, so every window of a long record is full length and every base is
    covered (the last overlap can therefore be larger). A record shorter than a window is
    one window.
    """
    if window_bp <= 0:
        raise TokenizerConfigError(f"window size {window_bp} bp must be positive")
    if not 0 <= overlap_bp < window_bp:
        raise TokenizerConfigError(
            f"overlap {overlap_bp} bp must be >= 0 and smaller than the window ({window_bp} bp)"
        )
    if length_bp <= window_bp:
        return [(0, length_bp)] if length_bp > 0 else []
    step = window_bp - overlap_bp
    starts = list(range(0, length_bp - window_bp + 1, step))
    if starts[-1] + window_bp < length_bp:
        starts.append(length_bp - window_bp)
    return [(start, start + window_bp) for start in starts]
