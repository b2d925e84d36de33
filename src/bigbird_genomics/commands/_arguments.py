"""Argument helpers shared by several commands: argparse value types (a bad value is refused
with argparse's usage line before any file is read or model loaded) and the k-mer settings
named by a training config's tokenizer option."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bigbird_genomics.errors import UserError


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes: 0 would loop forever or divide by zero further down)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """--device and --precision of the commands that score with a checkpoint."""
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16"),
        default="float32",
        help="bfloat16 runs the model under bf16 autocast: faster on GPUs and on CPUs with "
        "native bf16 (AVX512-BF16, AMX) for small/base models; probabilities move by bf16 "
        "rounding (up to ~0.05), so keep float32 for small effects (variant-effect, ism)",
    )


def conf_dir() -> Path:
    """The training configs: the packaged ones, or BIGBIRD_GENOMICS_CONF's copy (as
    `bigbird-genomics-train` reads them)."""
    packaged = Path(__file__).resolve().parents[1] / "conf"
    return Path(os.environ.get("BIGBIRD_GENOMICS_CONF", packaged))


def tokenizer_option(name: str) -> tuple[int, int]:
    """(k, stride) of the Hydra tokenizer option `name`: one source for both tokenize and
    train, so a data set and the model trained on it cannot disagree."""
    import yaml

    folder = conf_dir() / "tokenizer"
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
        raise UserError(f"--tokenizer {name}: no {path}; known options: {known}")
    settings = yaml.safe_load(path.read_text()) or {}
    if not isinstance(settings.get("k"), int) or not isinstance(settings.get("stride"), int):
        raise UserError(f"{path}: needs integer k and stride, found {settings!r}")
    return settings["k"], settings["stride"]


def kmer_settings(
    tokenizer: str | None, k: int | None, stride: int | None, default_k: int, default_stride: int
) -> tuple[int, int]:
    """(k, stride) from `--tokenizer NAME`, or from `--k`/`--stride` (not both ways at once)."""
    if tokenizer is not None:
        if k is not None or stride is not None:
            raise UserError("--tokenizer sets k and stride: give it, or --k/--stride, not both")
        return tokenizer_option(tokenizer)
    return (default_k if k is None else k), (default_stride if stride is None else stride)
