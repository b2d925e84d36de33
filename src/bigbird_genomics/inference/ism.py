"""In-silico saturation mutagenesis (ISM): the model's response to every single-base change.

For a record (a FASTA record or a genome region), every base of its central `max_bases` is
changed to each of the 3 other bases and the record re-scored. The record is cut into windows
as `predict` cuts it (`scan_plan`: the length of the model's training examples when the
checkpoint records it, else the checkpoint's context; half a window of overlap) and the
windows' probabilities are averaged (one window for a record that fits). Each window is read
on both strands and the two averaged when the model was trained on both
(`strand_symmetric`), on the forward strand only otherwise. The effect of a substitution is
the change in the record's log-odds, `logit(p_mutant) - logit(p_reference)`, per label:
log-odds keep a saturated model's effects apart, where probabilities near 1 would squash them
to 0.

Why it is fast (`method="ism"`): a base change touches only the k-mer tokens that cover it
(k with stride 1) and only the windows that hold those tokens. Each mutant is therefore a
window whose reference tokens are copied and only the touched ones re-encoded, the windows it
does not touch keep their reference probability, and all mutant windows go through the model
in batches. The transformer attends globally, so a touched window must be re-run whole: the
saving is in windows and batching, not inside a window.

`method="grad"`: gradient x input on the token embeddings, one forward and one backward pass
per label and batch of `batch_size` windows. A substitution turns each covering k-mer's
embedding e into e'; to first order the logit moves by grad . (e' - e), summed over the
k-mers that cover the base (docs/downstream.md). It fills the same positions x 4 matrix as
ISM, from 2 passes instead of 3 x positions x windows forward passes; an approximation, good
for ranking positions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bigbird_genomics.errors import UserError
from bigbird_genomics.inference._common import batches, log_odds
from bigbird_genomics.inference.scan import ScanPlan, iter_windows, scan_plan
from bigbird_genomics.io.atomic import atomic_path
from bigbird_genomics.model.encoder import padded_width
from bigbird_genomics.tokens.kmers import CLS_ID, NUM_SPECIAL, PAD_ID, UNK_ID

BASES = "ACGT"
METHODS = ("ism", "grad")
DEFAULT_BATCH_SIZE = 64
_CODE = np.full(256, -1, dtype=np.int64)
for _index, _base in enumerate(BASES.encode()):
    _CODE[_base] = _index


@dataclass
class IsmResult:
    """One record's mutagenesis: `effects[label, position, base]` (A, C, G, T) in log-odds;
    0 at the reference base and at bases that are not A/C/G/T."""

    record_id: str
    sequence: str  # the mutated stretch, upper case
    offset: int  # 0-based start of `sequence` in the record
    record_length: int
    effects: np.ndarray
    reference_probability: np.ndarray  # [labels]
    label_names: list[str]
    method: str
    num_windows: int
    num_forward_windows: int  # mutant windows run through the model (0 for grad)


def _strands(model: Any) -> str:
    return "both" if getattr(model, "strand_symmetric", False) else "forward"


def mutated_span(length: int, max_bases: int | None) -> tuple[int, int]:
    """(start, end) of the central `max_bases` of a record (the whole record when shorter)."""
    if max_bases is None or max_bases >= length:
        return 0, length
    if max_bases < 1:
        raise UserError(f"--max-bases must be at least 1, got {max_bases}")
    start = (length - max_bases) // 2
    return start, start + max_bases


def _touched_tokens(position: int, num_tokens: int, k: int, stride: int) -> tuple[int, int]:
    """Token indices [first, last] whose k-mer covers `position` (window coordinates);
    first > last when no token covers it (bases after the last whole k-mer)."""
    first = max(0, -(-(position - k + 1) // stride))
    last = min(num_tokens - 1, position // stride)
    return first, last


def _window_plan(
    model: Any, length: int, record_id: str = "record"
) -> tuple[ScanPlan, list[tuple[int, int]]]:
    plan = scan_plan(model)
    if length < model.tokenizer.k:
        raise UserError(
            f"{record_id}: {length} bp is shorter than one {model.tokenizer.k}-mer, so the "
            "model cannot read it; give records of at least k bases"
        )
    return plan, list(iter_windows(length, plan))


def _record_probability(window_probabilities: np.ndarray) -> np.ndarray:
    """A record's probability [labels] from its windows' [windows, labels]: their mean."""
    return window_probabilities.mean(axis=0)


def ism_record(
    model: Any,
    record_id: str,
    sequence: str,
    max_bases: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    touched_only: bool = True,
) -> IsmResult:
    """Saturation mutagenesis of one record by re-scoring mutants (see module doc).

    `touched_only=False` re-scores every window of each mutant (the benchmark's middle line).
    """
    tokenizer = model.tokenizer
    k, stride = tokenizer.k, tokenizer.stride
    sequence = sequence.upper()
    _, windows = _window_plan(model, len(sequence), record_id)
    strands = _strands(model)
    reference_tokens = [tokenizer.encode(sequence[start:end]) for start, end in windows]
    reference = np.asarray(model.predict_proba(reference_tokens, strands=strands), np.float64)
    reference_sum = reference.sum(axis=0)
    record_probability = reference_sum / len(windows)
    span_start, span_end = mutated_span(len(sequence), max_bases)
    num_labels = reference.shape[1]
    # mutant_sum[position, base] = sum over the record's windows of the mutant's probability
    mutant_sum = np.broadcast_to(
        reference_sum, (span_end - span_start, 4, num_labels)
    ).copy()
    is_mutated = np.zeros((span_end - span_start, 4), dtype=bool)

    def jobs() -> Iterator[tuple[int, int, int, np.ndarray]]:
        for position in range(span_start, span_end):
            base = sequence[position]
            for code, other in enumerate(BASES):
                if other == base or base not in BASES:
                    continue
                for window_index, (start, end) in enumerate(windows):
                    if not start <= position < end:
                        continue
                    tokens = reference_tokens[window_index]
                    first, last = _touched_tokens(position - start, len(tokens), k, stride)
                    if first > last and touched_only:
                        continue  # the base lies after the window's last whole k-mer
                    mutant = tokens.copy()
                    if first <= last:
                        piece = sequence[start + first * stride : start + last * stride + k]
                        offset = position - start - first * stride
                        piece = piece[:offset] + other + piece[offset + 1 :]
                        mutant[first : last + 1] = tokenizer.encode(piece)
                    yield position - span_start, code, window_index, mutant
                if not touched_only:
                    # every window of the mutant, touched or not, is scored again
                    for window_index, (start, end) in enumerate(windows):
                        if not start <= position < end:
                            yield (position - span_start, code, window_index,
                                   reference_tokens[window_index])

    num_forward = 0
    for batch in batches(jobs(), batch_size):
        probabilities = np.asarray(
            model.predict_proba([job[3] for job in batch], strands=strands), np.float64
        )
        num_forward += len(batch)
        for (row, code, window_index, _), probability in zip(batch, probabilities, strict=True):
            mutant_sum[row, code] += probability - reference[window_index]
            is_mutated[row, code] = True
    effects = log_odds(mutant_sum / len(windows)) - log_odds(record_probability)
    effects[~is_mutated] = 0.0
    return IsmResult(
        record_id, sequence[span_start:span_end], span_start, len(sequence),
        np.ascontiguousarray(effects.transpose(2, 0, 1), dtype=np.float32),
        record_probability, list(model.label_names), "ism", len(windows), num_forward,
    )


def _digits(ids: np.ndarray, k: int) -> np.ndarray:
    """Base codes [tokens, k] (first base first) of k-mer ids (>= NUM_SPECIAL)."""
    shifts = 2 * np.arange(k - 1, -1, -1)
    return ((ids[:, None] - NUM_SPECIAL) >> shifts) & 3


def grad_record(
    model: Any,
    record_id: str,
    sequence: str,
    max_bases: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> IsmResult:
    """Gradient x input estimate of every substitution's log-odds effect (see module doc).

    Windows go through the model `batch_size` at a time and each batch's gradients are folded
    into the effect matrix before the next batch runs, so memory holds one batch of
    [labels, windows, tokens, hidden] gradients, not the record's.
    """
    tokenizer = model.tokenizer
    k, stride = tokenizer.k, tokenizer.stride
    sequence = sequence.upper()
    _, windows = _window_plan(model, len(sequence), record_id)
    forward = [tokenizer.encode(sequence[start:end]) for start, end in windows]
    rc_table = tokenizer.reverse_complement_ids()
    strands = [forward]
    if _strands(model) == "both":
        strands.append([rc_table[tokens[::-1]] for tokens in forward])
    network = model.network
    # [hidden, vocab]: grad . e for every k-mer of the vocabulary in one product
    embedding_table = network.encoder.embedding.weight.detach().double().cpu().numpy().T
    num_labels = len(model.label_names)
    span_start, span_end = mutated_span(len(sequence), max_bases)
    length = span_end - span_start
    effects = np.zeros((num_labels, length, 4), dtype=np.float64)
    num_reads = len(strands) * len(windows)  # P is the mean over strands and windows
    probability_sum = np.zeros(num_labels)
    place = 4 ** np.arange(k - 1, -1, -1)  # weight of each base in the k-mer code
    for strand, strand_tokens in enumerate(strands):
        for indices in batches(range(len(windows)), batch_size):
            logits, grads = _embedding_gradients(
                model, [strand_tokens[i] for i in indices], num_labels
            )  # grads: [labels, batch, tokens, hidden]
            if model.task_type == "multiclass":
                probabilities = torch.from_numpy(logits).softmax(-1).numpy()
                slopes = np.full(probabilities.shape, 1.0 / num_reads)
            else:
                probabilities = 1 / (1 + np.exp(-logits))
                # d P / d z_(strand, window); divided by P (1 - P) once P is known (below)
                slopes = probabilities * (1 - probabilities) / num_reads
            probability_sum += probabilities.sum(axis=0)
            for row_in_batch, window_index in enumerate(indices):
                _add_window_effects(
                    effects, grads[:, row_in_batch], slopes[row_in_batch], forward[window_index],
                    windows[window_index][0], strand == 1, rc_table, embedding_table, k, stride,
                    place, span_start,
                )
    record_probability = probability_sum / num_reads
    if model.task_type != "multiclass":
        # d logit(P) / d z = (d P / d z) / (P (1 - P))
        effects /= np.clip(record_probability * (1 - record_probability), 1e-12, None)[
            :, None, None
        ]
    stretch = sequence[span_start:span_end]
    codes = _CODE[np.frombuffer(stretch.encode("ascii"), dtype=np.uint8)]
    for row, code in enumerate(codes):
        if code < 0:
            effects[:, row, :] = 0.0
        else:
            effects[:, row, code] = 0.0
    return IsmResult(
        record_id, stretch, span_start, len(sequence), effects.astype(np.float32),
        record_probability, list(model.label_names), "grad", len(windows), 0,
    )


def _add_window_effects(
    effects: np.ndarray,
    grads: np.ndarray,
    slopes: np.ndarray,
    tokens: np.ndarray,
    start: int,
    reverse: bool,
    rc_table: np.ndarray,
    embedding_table: np.ndarray,
    k: int,
    stride: int,
    place: np.ndarray,
    span_start: int,
) -> None:
    """Add one window's first-order effects, `slopes[label] * grad . (e' - e)`, to `effects`
    [labels, positions, 4]. `grads` [labels, tokens, hidden] are for the strand it was read on;
    `tokens` are its forward k-mer ids."""
    length = effects.shape[1]
    known = tokens != UNK_ID
    digits = _digits(np.where(known, tokens, NUM_SPECIAL), k)  # [tokens, k]
    # mutant ids [tokens, k offsets, 4 bases]: base at offset o set to b
    mutant = tokens[:, None, None] + (np.arange(4)[None, None, :] - digits[:, :, None]) \
        * place[None, :, None]
    if reverse:  # the reverse strand read the reverse-complement k-mers, reversed
        mutant, tokens_read = rc_table[mutant], rc_table[tokens]
        row_of = np.arange(len(tokens))[::-1]
    else:
        tokens_read, row_of = tokens, np.arange(len(tokens))
    positions = start + np.arange(len(tokens))[:, None] * stride + np.arange(k)
    rows = positions - span_start
    inside = (rows >= 0) & (rows < length)
    for label in range(effects.shape[0]):
        grad = grads[label][row_of].astype(np.float64)  # [tokens, hidden]
        scores = grad @ embedding_table  # [tokens, vocab]
        base_score = scores[np.arange(len(tokens)), tokens_read]
        delta = np.take_along_axis(
            scores, mutant.reshape(len(tokens), -1), axis=1
        ).reshape(len(tokens), k, 4) - base_score[:, None, None]
        delta[~known] = 0.0
        np.add.at(effects[label], rows[inside], delta[inside] * slopes[label])


def _embedding_gradients(
    model: Any, windows: Sequence[np.ndarray], num_labels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Logits [windows, labels] (float64) and d logit / d embedding [labels, windows, tokens,
    hidden] (float32, as computed) for one batch of equal-length token arrays. Plain torch
    autograd with a forward hook on the embedding layer: one gradient per label is all
    gradient x input needs (captum is not a dependency)."""
    network = model.network
    encoder = network.encoder
    width = padded_width(len(windows[0]) + 1, model.block_size, encoder.config.downsample)
    batch = torch.full((len(windows), width), PAD_ID, dtype=torch.long)
    batch[:, 0] = CLS_ID
    for row, tokens in enumerate(windows):
        batch[row, 1 : 1 + len(tokens)] = torch.from_numpy(np.ascontiguousarray(tokens))
    batch = batch.to(model.device)
    captured: list[torch.Tensor] = []
    handle = encoder.embedding.register_forward_hook(
        lambda module, inputs, output: captured.append(output)
    )
    try:
        with torch.enable_grad(), model.autocast():
            logits = network(batch, batch != PAD_ID).float()
            embedded = captured[-1]
            if embedded.shape[1] != width:
                raise UserError(
                    "--method grad needs the k-mer embeddings of every token, but this "
                    "checkpoint's convolutional stem reads token ids directly; use --method ism"
                )
            grads = [
                torch.autograd.grad(logits[:, label].sum(), embedded, retain_graph=True)[0]
                for label in range(num_labels)
            ]
    finally:
        handle.remove()
    stacked = torch.stack(grads)[:, :, 1 : 1 + len(windows[0])].float().cpu().numpy()
    return logits.detach().cpu().numpy().astype(np.float64), stacked


def mutagenesis(
    model: Any,
    record_id: str,
    sequence: str,
    method: str = "ism",
    max_bases: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> IsmResult:
    """`ism_record` or `grad_record` by `method`."""
    if method not in METHODS:
        raise UserError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    if method == "grad":
        return grad_record(model, record_id, sequence, max_bases, batch_size)
    return ism_record(model, record_id, sequence, max_bases, batch_size)


def naive_ism(model: Any, sequence: str, max_bases: int | None = None) -> np.ndarray:
    """The executable specification of `ism_record`: each mutant record built whole, all its
    windows encoded and scored in one call per mutant. Effects [labels, positions, 4]."""
    sequence = sequence.upper()
    _, windows = _window_plan(model, len(sequence))
    strands = _strands(model)

    def record_probability(text: str) -> np.ndarray:
        tokens = [model.tokenizer.encode(text[start:end]) for start, end in windows]
        return _record_probability(
            np.asarray(model.predict_proba(tokens, strands=strands), np.float64)
        )

    reference = record_probability(sequence)
    span_start, span_end = mutated_span(len(sequence), max_bases)
    effects = np.zeros((len(model.label_names), span_end - span_start, 4))
    for position in range(span_start, span_end):
        for code, other in enumerate(BASES):
            if other == sequence[position] or sequence[position] not in BASES:
                continue
            mutant = sequence[:position] + other + sequence[position + 1 :]
            effects[:, position - span_start, code] = (
                log_odds(record_probability(mutant)) - log_odds(reference)
            )
    return effects


def summary_columns(label_names: Sequence[str], region: bool = False) -> list[str]:
    """Columns of the ISM summary TSV: one row per record. `png` is the record's picture in
    the output folder (empty under --no-plots); a genome-region run adds `chrom` and, per
    label, `<label>_max_genome_pos`, the strongest position on the chromosome (1-based)."""
    columns = ["id", *(["chrom"] if region else []), "length", "offset", "num_positions",
               "method", "num_windows", "png"]
    for label in label_names:
        columns += [f"{label}_p_ref", f"{label}_max_abs_effect", f"{label}_max_position",
                    *([f"{label}_max_genome_pos"] if region else []),
                    f"{label}_max_alt", f"{label}_mean_abs_effect"]
    return columns


def summary_row(
    result: IsmResult, png: str = "", region: tuple[str, int] | None = None
) -> list[str]:
    """The strongest substitution per label (position 1-based in the record) and the mean
    |effect| over all substitutions. `region` = (chrom, 1-based start of the record on it)
    for a genome region: its row also names the chromosome and the genome position."""
    row = [result.record_id, *([region[0]] if region else []), str(result.record_length),
           str(result.offset), str(len(result.sequence)), result.method,
           str(result.num_windows), png]
    num_substitutions = max(1, 3 * len(result.sequence))
    for label in range(len(result.label_names)):
        magnitude = np.abs(result.effects[label])
        position, code = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
        in_record = result.offset + int(position)  # 0-based in the record
        row += [
            f"{result.reference_probability[label]:.6g}",
            f"{magnitude[position, code]:.6g}",
            str(in_record + 1),
            *([str(region[1] + in_record)] if region else []),
            BASES[int(code)],
            f"{magnitude.sum() / num_substitutions:.6g}",
        ]
    return row


def save_result(result: IsmResult, path: Any) -> None:
    """The effect matrix, reference stretch and labels as one .npz, written atomically."""
    with atomic_path(path) as temporary:
        np.savez_compressed(
            temporary,
            effects=result.effects,
            sequence=np.array(result.sequence),
            offset=np.array(result.offset),
            record_id=np.array(result.record_id),
            label_names=np.array(result.label_names),
            bases=np.array(list(BASES)),
            reference_probability=result.reference_probability.astype(np.float32),
            method=np.array(result.method),
        )
