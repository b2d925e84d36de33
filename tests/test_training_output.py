"""What a training run prints: its final scores in a few lines, and no third-party noise that
says nothing about the run (filtered narrowly: other warnings still show)."""

from __future__ import annotations

import logging
import warnings

import pytest

from bigbird_genomics.training.noise import LIGHTNING_RANK_ZERO_LOGGER, silence_third_party_noise
from bigbird_genomics.training.run_outputs import summary_lines


def test_summary_of_a_binary_run() -> None:
    metrics = {
        "test": {"num_examples": 189, "accuracy": 0.9683, "auroc": 0.99854, "auprc": 0.9985,
                 "f1": 0.968, "mcc": 0.937, "strands": "forward"},
        "val": {"num_examples": 225, "loss": 0.0719, "auroc": 0.999},
    }  # fmt: skip
    assert summary_lines(metrics) == [
        "test (189 examples): accuracy 0.9683, AUROC 0.9985, AUPRC 0.9985, F1 0.968, MCC 0.937",
        "val (225 examples): loss 0.0719 (best checkpoint)",
    ]


def test_summary_of_a_multilabel_run_names_the_groups() -> None:
    metrics = {
        "test": {"num_examples": 234, "accuracy": 0.81, "auroc_mean": 0.8967, "auprc_mean": 0.82,
                 "group/TF/auroc_mean": 0.9, "group/histone/auroc_mean": 0.87,
                 "group/histone/auprc_mean": 0.7, "per_label": {"CTCF": {"auroc": 0.95}}},
    }  # fmt: skip
    assert summary_lines(metrics) == [
        "test (234 examples): accuracy 0.81, mean AUROC 0.8967, mean AUPRC 0.82",
        "test mean AUROC by group: TF 0.9, histone 0.87",
    ]


def test_summary_of_an_mlm_run_reads_validation() -> None:
    assert summary_lines({"val": {"loss": 2.5, "accuracy": 0.31}}) == [
        "val: loss 2.5, accuracy 0.31"
    ]
    assert summary_lines({}) == []


def test_noise_filters_are_narrow(caplog: pytest.LogCaptureFixture) -> None:
    silence_third_party_noise()
    silence_third_party_noise()  # idempotent: one filter, however many jobs
    lightning = logging.getLogger(LIGHTNING_RANK_ZERO_LOGGER)
    assert len(lightning.filters) == len(set(map(type, lightning.filters)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        silence_third_party_noise()  # catch_warnings restores the filters it found on exit
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning,
                      stacklevel=1)  # fmt: skip
        warnings.warn("something else is deprecated", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else is deprecated"]
    with caplog.at_level(logging.INFO, logger=LIGHTNING_RANK_ZERO_LOGGER):
        lightning.info("💡 Tip: For seamless cloud logging, try installing [litlogger](...)")
        lightning.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]
