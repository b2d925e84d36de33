"""inference.ensemble: several checkpoints scored as one, probabilities averaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bigbird_genomics import cli
from bigbird_genomics.inference.checkpoint import load_checkpoint
from bigbird_genomics.inference.ensemble import Ensemble, EnsembleMismatchError, load_models
from bigbird_genomics.inference.evaluation import predict_split
from bigbird_genomics.inference.scan import predict_fasta
from bigbird_genomics.io.writers import write_fasta
from bigbird_genomics.tokens.build import tokenize_fasta
from bigbird_genomics.tokens.kmers import KmerTokenizer
from bigbird_genomics.tokens.store import TokenizedDataset
from bigbird_genomics.training.module import GenomicsModule

MODEL = {"vocab_size": 69, "hidden_size": 16, "num_layers": 1, "num_heads": 2,
         "intermediate_size": 32, "dropout": 0.1, "max_tokens": 64, "rotary_base": 10000.0}
ATTENTION = {"block_size": 16, "num_window_blocks": 3, "num_global_blocks": 2,
             "num_random_blocks": 1, "random_per_head": False, "seed": 0, "backend": "auto"}


def _checkpoint(path: Path, seed: int, *, labels=("label",), task_type: str = "binary",
                k: int = 3, max_tokens: int = 64) -> Path:
    """A checkpoint in Lightning's layout with weights drawn from `seed`."""
    torch.manual_seed(seed)
    task = {"name": "t", "type": task_type, "pooling": "cls", "num_classes": None,
            "label_names": list(labels), "label_groups": {}, "pos_weight": None}
    tokenizer = KmerTokenizer(k=k)
    model = {**MODEL, "vocab_size": tokenizer.vocab_size, "max_tokens": max_tokens}
    module = GenomicsModule(model, ATTENTION, task, tokenizer.to_dict(), {"lr": 1e-3})
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    return path


def _tokens(count: int, length: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(5, 69, size=length) for _ in range(count)]


def test_ensemble_is_the_mean_of_its_members(tmp_path: Path) -> None:
    paths = [_checkpoint(tmp_path / f"{seed}.ckpt", seed) for seed in (1, 2)]
    members = [load_checkpoint(path) for path in paths]
    tokens = _tokens(5, 40)
    each = [member.predict_proba(tokens) for member in members]
    assert not np.allclose(each[0], each[1])  # two different models
    ensemble = load_models(paths)
    assert isinstance(ensemble, Ensemble)
    np.testing.assert_allclose(ensemble.predict_proba(tokens), (each[0] + each[1]) / 2,
                               rtol=1e-6, atol=1e-7)
    both = [member.predict_proba(tokens, "both") for member in members]
    np.testing.assert_allclose(ensemble.predict_proba(tokens, "both"), (both[0] + both[1]) / 2,
                               rtol=1e-6, atol=1e-7)
    # one path: the plain LoadedModel
    assert not isinstance(load_models(paths[:1]), Ensemble)


def test_mismatched_members_are_refused(tmp_path: Path) -> None:
    base = _checkpoint(tmp_path / "base.ckpt", 1)
    other_k = _checkpoint(tmp_path / "k4.ckpt", 2, k=4)
    other_labels = _checkpoint(tmp_path / "labels.ckpt", 3, labels=("enhancer",))
    other_task = _checkpoint(tmp_path / "multi.ckpt", 4, labels=("a", "b"),
                             task_type="multilabel")
    with pytest.raises(EnsembleMismatchError, match=r"k4.ckpt reads k=4.*same k and stride"):
        load_models([base, other_k])
    with pytest.raises(EnsembleMismatchError, match=r"labels.ckpt predicts enhancer.*label"):
        load_models([base, other_labels])
    with pytest.raises(EnsembleMismatchError, match="multilabel model"):
        load_models([base, other_task])


def test_contexts_differ_the_smallest_plans_the_windows(tmp_path: Path) -> None:
    short = _checkpoint(tmp_path / "short.ckpt", 1, max_tokens=32)
    long = _checkpoint(tmp_path / "long.ckpt", 2, max_tokens=64)
    ensemble = load_models([long, short])
    assert ensemble.max_tokens == 32
    rng = np.random.default_rng(1)
    fasta = write_fasta(tmp_path / "g.fa", [("chr1", "".join(rng.choice(list("ACGT"), 200)))])
    summary = predict_fasta(ensemble, fasta, tmp_path / "p.tsv", strands="forward")
    assert summary.plan.window_bp == KmerTokenizer(k=3).max_bases(31)


def test_cli_evaluate_and_predict_take_several_checkpoints(tmp_path: Path) -> None:
    paths = [_checkpoint(tmp_path / f"{seed}.ckpt", seed) for seed in (1, 2)]
    rng = np.random.default_rng(2)
    records = [(f"r{i} label={i % 2} split=test", "".join(rng.choice(list("ACGT"), 60)))
               for i in range(8)]
    fasta = write_fasta(tmp_path / "d.fa", records)
    data_dir = tokenize_fasta(fasta, tmp_path / "data", KmerTokenizer(k=3), max_tokens=63)
    out = tmp_path / "m.json"
    argv = ["evaluate", "--data", str(data_dir), "--out", str(out)]
    assert cli.main([*argv, "--checkpoint", str(paths[0]), "--checkpoint", str(paths[1])]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["checkpoint"] == [str(p) for p in paths]
    data = TokenizedDataset(data_dir)
    expected = predict_split(load_models(paths), data, "test", 64)
    single = predict_split(load_checkpoint(paths[0]), data, "test", 64)
    assert not np.allclose(expected.probs, single.probs)
    predictions = tmp_path / "p.tsv"
    assert cli.main(["predict", "--fasta", str(fasta), "--out", str(predictions),
                     "--checkpoint", str(paths[0]), "--checkpoint", str(paths[1]),
                     "--strands", "forward"]) == 0  # fmt: skip
    rows = predictions.read_text().splitlines()
    assert len(rows) == 9
    first = dict(zip(rows[0].split("\t"), rows[1].split("\t"), strict=True))
    tokens = KmerTokenizer(k=3).encode(records[0][1])
    assert float(first["label_max"]) == pytest.approx(
        float(load_models(paths).predict_proba([tokens])[0, 0]), abs=1e-5
    )
