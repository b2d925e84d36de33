"""inference.load_checkpoint / LoadedModel: the contract `predict` and `evaluate` rely on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bigbird_genomics.errors import UserError
from bigbird_genomics.inference.checkpoint import CheckpointError, load_checkpoint
from bigbird_genomics.tokens.kmers import KmerTokenizer
from bigbird_genomics.tokens.store import TokenizedDataset
from bigbird_genomics.training.module import GenomicsModule

MODEL = {"vocab_size": 69, "hidden_size": 16, "num_layers": 1, "num_heads": 2,
         "intermediate_size": 32, "dropout": 0.1, "max_tokens": 64, "rotary_base": 10000.0}
ATTENTION = {"block_size": 16, "num_window_blocks": 3, "num_global_blocks": 2,
             "num_random_blocks": 1, "random_per_head": False, "seed": 0, "backend": "auto"}


def _checkpoint(
    path: Path,
    task_type: str = "multilabel",
    labels=("CTCF", "DNase"),
    max_tokens: int = 64,
    num_layers: int = 1,
    reverse_complement: bool = False,
    **model_extra: int,
) -> Path:
    """A checkpoint in Lightning's layout (hyper_parameters + state_dict), saved plainly."""
    torch.manual_seed(0)
    task = {"name": "t", "type": task_type, "pooling": "cls", "num_classes": None,
            "label_names": list(labels), "label_groups": {}, "pos_weight": None}
    model = {**MODEL, "max_tokens": max_tokens, "num_layers": num_layers, **model_extra}
    module = GenomicsModule(model, ATTENTION, task, KmerTokenizer(k=3).to_dict(), {"lr": 1e-3},
                            reverse_complement=reverse_complement)
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    return path


def test_loaded_model_contract(tmp_path: Path) -> None:
    model = load_checkpoint(_checkpoint(tmp_path / "m.ckpt"))
    assert model.tokenizer == KmerTokenizer(k=3)
    assert model.label_names == ["CTCF", "DNase"]
    assert (model.task_type, model.max_tokens) == ("multilabel", 64)
    assert not model.network.training  # eval mode: dropout off
    rng = np.random.default_rng(0)
    tokens = [rng.integers(5, 69, size=n) for n in (10, 63, 1)]
    probs = model.predict_proba(tokens)
    assert probs.shape == (3, 2) and probs.dtype == np.float32
    np.testing.assert_array_equal(probs, model.predict_proba(tokens))
    # a sequence's score does not depend on what else is in the batch (padding is masked)
    alone = model.predict_proba(tokens[:1])
    np.testing.assert_allclose(alone[0], probs[0], atol=1e-5)
    assert model.predict_proba([]).shape == (0, 2)


TOWER = {"stem_kernel": 3, "stem_pool": 2, "stem_layers": 2}


@pytest.mark.parametrize("stem", [{}, {"stem_kernel": 3, "stem_pool": 2}, TOWER])
def test_score_does_not_depend_on_batch_neighbours(tmp_path: Path, stem: dict) -> None:
    """16 blocks: the sparse layout depends on the padded length, so records must not be padded
    by longer neighbours (the last global block and random blocks would move into padding).
    With a pooling stem, records of equal pooled block count share a batch unpadded to blocks."""
    # Two layers: with one, the [CLS] output only sees the global first block's own row.
    model = load_checkpoint(
        _checkpoint(tmp_path / "m.ckpt", max_tokens=512, num_layers=2, **stem)
    )
    rng = np.random.default_rng(1)
    # 316 and 317 k-mers: 5 and 6 blocks after the tower's pooling by 4, but the same 10 blocks
    # after one pooling by 2, so grouping by stem_pool instead of the total would pad one across
    # a block boundary and move its last global block.
    records = [rng.integers(5, 69, size=n) for n in (100, 230, 97, 316, 317)]
    together = model.predict_proba(records)
    for row, record in enumerate(records):
        np.testing.assert_allclose(together[row], model.predict_proba([record])[0], atol=1e-6)


def test_both_strands_average_the_reverse_complement(tmp_path: Path) -> None:
    """`strands="both"` is the mean of the record and Biopython's reverse complement of it,
    tokenized from bases; so a record and its reverse complement score the same."""
    from Bio.Seq import reverse_complement

    model = load_checkpoint(_checkpoint(tmp_path / "m.ckpt", max_tokens=256, num_layers=2))
    tokenizer = model.tokenizer
    rng = np.random.default_rng(3)
    sequences = ["".join(rng.choice(list("ACGT"), size=n)) for n in (40, 150)]
    sequences.append("ACGTNNACGTTTGCA" * 6)  # [UNK] k-mers map to themselves
    forward = [tokenizer.encode(s) for s in sequences]
    other = [tokenizer.encode(reverse_complement(s)) for s in sequences]
    both = model.predict_proba(forward, strands="both")
    expected = (model.predict_proba(forward) + model.predict_proba(other)) / 2
    np.testing.assert_allclose(both, expected, atol=1e-6)
    np.testing.assert_allclose(model.predict_proba(other, strands="both"), both, atol=1e-6)
    assert not np.allclose(model.predict_proba(forward), model.predict_proba(other))
    # reversed views (negative strides) are valid inputs too
    np.testing.assert_array_equal(
        model.predict_proba([forward[0][::-1]]), model.predict_proba([forward[0][::-1].copy()])
    )
    with pytest.raises(ValueError, match="strands"):
        model.predict_proba(forward, strands="reverse")


def test_evaluation_uses_both_strands_when_trained_on_both(tmp_path: Path) -> None:
    from bigbird_genomics.inference.evaluation import resolve_strands

    stranded = load_checkpoint(_checkpoint(tmp_path / "a.ckpt"))
    unstranded = load_checkpoint(_checkpoint(tmp_path / "b.ckpt", reverse_complement=True))
    assert (stranded.strand_symmetric, unstranded.strand_symmetric) == (False, True)
    assert resolve_strands(stranded) == "forward"
    assert resolve_strands(unstranded) == "both"
    assert resolve_strands(unstranded, "forward") == "forward"
    assert resolve_strands(stranded, "both") == "both"
    with pytest.raises(UserError, match="strands"):
        resolve_strands(stranded, "minus")


def test_too_long_input_is_a_user_error(tmp_path: Path) -> None:
    model = load_checkpoint(_checkpoint(tmp_path / "m.ckpt"))
    with pytest.raises(UserError, match="context"):
        model.predict_proba([np.full(64, 5)])  # 64 + [CLS] > 64


def test_bad_checkpoints_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.ckpt")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a bigbird-genomics"):
        load_checkpoint(foreign)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read .*not a PyTorch checkpoint"):
        load_checkpoint(garbage)


def test_devices_that_do_not_exist_here_are_user_errors(tmp_path: Path) -> None:
    """Not reported as an unreadable checkpoint (torch's deserialisation error)."""
    checkpoint = _checkpoint(tmp_path / "m.ckpt")
    with pytest.raises(UserError, match="--device gpu is not a torch device"):
        load_checkpoint(checkpoint, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="--device cuda: CUDA is not available here"):
            load_checkpoint(checkpoint, device="cuda")


def test_evaluation_data_longer_than_the_context_names_the_fix(tmp_path: Path) -> None:
    from bigbird_genomics.inference.evaluation import predict_split
    from bigbird_genomics.tokens.build import tokenize_fasta

    fasta = tmp_path / "long.fa"
    fasta.write_text("".join(f">r{i} labels=0,1 split=test\n{'ACGT' * 30}\n" for i in range(3)))
    data = tokenize_fasta(fasta, tmp_path / "tok", KmerTokenizer(k=3), max_tokens=118)
    model = load_checkpoint(  # context: 63 k-mers + [CLS]
        _checkpoint(tmp_path / "m.ckpt", labels=("label_0", "label_1"))
    )
    with pytest.raises(UserError, match="up to 118 k-mer tokens .* --max-tokens 63"):
        predict_split(model, TokenizedDataset(data), "test")


def test_binary_checkpoint_gives_one_column(tmp_path: Path) -> None:
    model = load_checkpoint(_checkpoint(tmp_path / "b.ckpt", "binary", ("label",)))
    assert model.predict_proba([np.arange(5, 20)]).shape == (1, 1)
