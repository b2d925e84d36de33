"""Load a training checkpoint for prediction, without Lightning or Hydra.

The checkpoint's hyper-parameters are plain dicts (see `training.module.GenomicsModule`), so
`torch.load(weights_only=True)` reads it and never runs pickled code from the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bigbird_genomics.errors import UserError
from bigbird_genomics.model.encoder import attention_blocks, padded_width, stem_downsample
from bigbird_genomics.model.network import GenomicsModel, num_outputs
from bigbird_genomics.tokens.kmers import CLS_ID, PAD_ID, KmerTokenizer

log = logging.getLogger(__name__)


class CheckpointError(UserError):
    """A checkpoint that is missing, unreadable, or not written by bigbird-genomics training."""


def resolve_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device that exists here, or a UserError saying what to use instead."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise UserError(
            f"--device {device} is not a torch device ({error}); use cpu, cuda, cuda:N or mps"
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserError(
            f"--device {device}: CUDA is not available here (no GPU, or a CPU build of torch); "
            "use --device cpu"
        )
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise UserError(
            f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s), "
            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {device}: MPS (Apple GPU) is not available here; use cpu")
    return resolved


# Where a checkpoint keeps the sha256 digests of what it stores (written by training's
# CheckpointIO, checked by `read_checkpoint`): one flipped bit in a weight or a hand-edited
# hyper-parameter is then a clear error instead of a silently different model.
INTEGRITY_KEY = "bigbird_genomics_integrity"
# The parts of a checkpoint that are hashed: the weights that predict/evaluate/init_from use,
# the raw weights the EMA callback keeps for resuming, and what rebuilds the network.
HASHED_STATES = ("state_dict", "current_model_state")


def tensors_digest(state: Mapping[str, Any]) -> str:
    """sha256 over a state dict in key order: each key, dtype, shape and the tensor's bytes."""
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        digest.update(key.encode("utf-8") + b"\0")
        if not isinstance(value, torch.Tensor):
            digest.update(json.dumps(value, sort_keys=True, default=str).encode("utf-8"))
            continue
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{tensor.dtype}{tuple(value.shape)}".encode())
        # viewed as bytes: numpy knows neither bfloat16 nor the float8 types
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def hparams_digest(hparams: Mapping[str, Any]) -> str:
    """sha256 of the hyper-parameters as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(dict(hparams), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def checkpoint_digests(checkpoint: Mapping[str, Any]) -> dict[str, str]:
    """The digests `INTEGRITY_KEY` holds for `checkpoint`, over what it stores."""
    digests = {
        name: tensors_digest(checkpoint[name])
        for name in HASHED_STATES
        if isinstance(checkpoint.get(name), Mapping)
    }
    digests["hyper_parameters"] = hparams_digest(checkpoint.get("hyper_parameters") or {})
    return digests


def verify_integrity(checkpoint: Mapping[str, Any], path: str | Path) -> None:
    """Compare the stored digests with the contents; a checkpoint without them is accepted
    with a warning (written before checkpoints carried them, or by other tools)."""
    stored = checkpoint.get(INTEGRITY_KEY)
    if not isinstance(stored, Mapping):
        log.warning(
            "checkpoint %s carries no content hash, so corruption cannot be detected; "
            "checkpoints written by bigbird-genomics-train carry one", path,
        )
        return
    actual = checkpoint_digests(checkpoint)
    names = set(stored) | set(actual)
    damaged = sorted(name for name in names if stored.get(name) != actual.get(name))
    if damaged:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: the content hash of its {' and '.join(damaged)} "
            "differs from the one stored when it was written (a damaged copy, a failing disk, or "
            "an edited file); copy it again from its source, or retrain"
        )


def read_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dict, loaded safely (weights_only=True) and checked against its
    content hash."""
    path = Path(path)
    device = resolve_device(device)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; pass a run's checkpoints/best.ckpt"
        )
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        # torch's own message can run to a page (and suggests weights_only=False, which would
        # let the file run code): its first line is enough
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(error).__name__}: {reason}): not a PyTorch "
            "checkpoint written by bigbird-genomics training, or a truncated one; pass a run's "
            "checkpoints/best.ckpt"
        ) from error
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, Mapping) or not {"model", "attention", "task", "tokenizer"} <= set(
        hparams
    ):
        raise CheckpointError(
            f"{path} is not a bigbird-genomics training checkpoint (no model/attention/task/"
            "tokenizer hyper-parameters)"
        )
    if not isinstance(checkpoint.get("state_dict"), Mapping):
        raise CheckpointError(f"{path} is not a bigbird-genomics training checkpoint (no weights)")
    verify_integrity(checkpoint, path)
    return checkpoint


def output_names(task: dict[str, Any]) -> list[str]:
    """Column names of `predict_proba`: one per label, or one per class for multiclass."""
    if task["type"] == "multiclass":
        return [f"class_{index}" for index in range(int(task["num_classes"]))]
    return list(task.get("label_names") or ["label"])


@dataclass
class LoadedModel:
    """A trained model ready to score token arrays (k-mer ids without [CLS])."""

    network: GenomicsModel
    tokenizer: KmerTokenizer
    label_names: list[str]
    task_type: str
    max_tokens: int
    block_size: int
    hparams: dict[str, Any] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    path: Path | None = None  # the checkpoint file, for messages
    # bf16 autocast for scoring (None: float32): faster where bf16 matrix products are native
    # (GPUs; CPUs with AVX512-BF16 or AMX, where the block backend's bf16 kernels run).
    autocast_dtype: torch.dtype | None = None

    def autocast(self) -> torch.autocast:
        """The autocast context every forward pass of this model runs in."""
        return torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        )

    @property
    def strand_symmetric(self) -> bool:
        """Trained on both strands (`data.reverse_complement=true`): the task has no strand, so
        the record and its reverse complement are two readings of one answer."""
        return bool(self.hparams.get("reverse_complement", False))

    @property
    def trained_window_bp(self) -> int | None:
        """Longest example (bp) of the training data, or None for checkpoints that lack it."""
        window = self.hparams.get("task", {}).get("window_bp")
        return int(window) if window else None

    def predict_proba(self, tokens: list[np.ndarray], strands: str = "forward") -> np.ndarray:
        """Probabilities [batch, labels]; `strands="both"` averages each record's two strands.

        Averaging is test-time augmentation for a model trained on both strands (its two
        readings are noisy estimates of one label). Genome scanning (`predict`) instead keeps
        the larger of the two, to find a site on either strand. The other strand is made on
        token ids as in training (`augment.py`): with stride 1 it is exactly the tokenization of
        the reverse complement; with stride s > 1, that strand read in another frame.
        """
        if strands not in ("forward", "both"):
            raise ValueError(f"strands must be 'forward' or 'both', got {strands!r}")
        probs = self._predict_one_strand(tokens)
        if strands == "both":
            table = self.tokenizer.reverse_complement_ids()
            other = [table[np.asarray(example, dtype=np.int64)[::-1]] for example in tokens]
            probs = (probs + self._predict_one_strand(other)) / 2
        self._check_finite(probs)
        return probs

    def _check_finite(self, probs: np.ndarray) -> None:
        """Refuse NaN / infinite probabilities: every metric and table built on them would look
        like a result (NaN compares false, so a NaN reads as a negative call)."""
        bad = ~np.isfinite(probs)
        if bad.any():
            rows = int(bad.any(axis=1).sum())
            raise CheckpointError(
                f"checkpoint {self.path or '(in memory)'}: the model gives non-finite (NaN or "
                f"infinite) probabilities for {rows} of {len(probs)} input(s); its weights are "
                "damaged (a diverged or corrupted training run): use an earlier checkpoint of "
                "the run, or retrain (a lower learning rate, gradient clipping)"
            )

    def _predict_one_strand(self, tokens: list[np.ndarray]) -> np.ndarray:
        """Probabilities [batch, labels]: adds [CLS], pads to the block size, no dropout.

        The sparse layout (which block is the last global one, where random blocks may land) is
        drawn over the padded length, so padding a record up to a longer neighbour would change
        its score. Records are therefore scored in groups of equal block count: each one is
        padded only within its own last block, exactly as if it were scored alone.
        """
        if self.task_type == "mlm":
            raise UserError(
                "a masked-LM checkpoint predicts tokens, not labels; fine-tune it first"
            )
        longest = max((len(t) for t in tokens), default=0) + 1
        if longest > self.max_tokens:
            raise UserError(
                f"an input has {longest - 1} k-mer tokens but the checkpoint's context holds "
                f"{self.max_tokens - 1} (+[CLS]); cut it into windows first"
            )
        downsample = self.network.encoder.config.downsample
        blocks = np.array(
            [attention_blocks(len(t) + 1, self.block_size, downsample) for t in tokens],
            dtype=np.int64,
        )
        probs = np.zeros((len(tokens), len(self.label_names)), dtype=np.float32)
        for count in np.unique(blocks):
            rows = np.flatnonzero(blocks == count)
            longest = max(len(tokens[row]) for row in rows) + 1
            width = padded_width(longest, self.block_size, downsample)
            probs[rows] = self._score([tokens[row] for row in rows], width)
        return probs

    def _score(self, tokens: list[np.ndarray], width: int) -> np.ndarray:
        """Probabilities for records that all pad to `width` tokens."""
        batch = torch.full((len(tokens), width), PAD_ID, dtype=torch.long)
        batch[:, 0] = CLS_ID
        for row, example in enumerate(tokens):
            batch[row, 1 : 1 + len(example)] = torch.from_numpy(
                np.ascontiguousarray(example, dtype=np.int64)  # reversed views too
            )
        batch = batch.to(self.device)
        with torch.inference_mode(), self.autocast():
            logits = self.network(batch, batch != PAD_ID).float()
        if self.task_type == "multiclass":
            return logits.softmax(-1).cpu().numpy()
        return logits.sigmoid().cpu().numpy()


PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", precision: str = "float32"
) -> LoadedModel:
    """Rebuild the network of a training checkpoint in eval mode on `device`; `precision`
    "bfloat16" scores under bf16 autocast (the weights stay float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    checkpoint = read_checkpoint(path, device)
    hparams = checkpoint["hyper_parameters"]
    try:
        task = hparams["task"]
        outputs = 0 if task["type"] == "mlm" else num_outputs(
            task["type"], len(task.get("label_names") or []), task.get("num_classes")
        )
        network = GenomicsModel(
            hparams["model"], hparams["attention"], task["type"], outputs,
            pooling=task.get("pooling", "cls"),
        )
        tokenizer = KmerTokenizer.from_dict(hparams["tokenizer"])
        max_tokens = int(hparams["model"]["max_tokens"])
        block_size = int(hparams["attention"]["block_size"])
        label_names = output_names(task)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        # Checks further down format these values into their own messages, and a damaged value
        # (a list where a number goes) breaks that formatting: stop here, naming the file.
        raise CheckpointError(
            f"checkpoint {path}: its hyper-parameters are damaged or of another version "
            f"({type(error).__name__}: {str(error)[:200]}); the model cannot be rebuilt from "
            "them. Use a checkpoint written by bigbird-genomics-train"
        ) from error
    prefix = "network."
    state = {
        key[len(prefix):]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(prefix)
    }
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(
            f"checkpoint {path}: its weights do not fit the network its hyper-parameters "
            f"describe ({_first_line(error)}); the file was assembled from two models. Use a "
            "checkpoint written by bigbird-genomics-train"
        ) from error
    device = torch.device(device)
    network.to(device).eval()
    return LoadedModel(
        network=network,
        tokenizer=tokenizer,
        label_names=label_names,
        task_type=task["type"],
        max_tokens=max_tokens,
        block_size=block_size,
        hparams=hparams,
        device=device,
        path=Path(path),
        autocast_dtype=PRECISIONS[precision],
    )


def _first_line(error: BaseException) -> str:
    """The first meaningful line of a state-dict error (torch lists every tensor after it)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = next((line for line in lines[1:] if "size mismatch" in line or "key" in line), "")
    return "; ".join(part for part in (lines[0] if lines else "", detail) if part)[:300]


def load_encoder_weights(network: GenomicsModel, path: str | Path) -> int:
    """Copy a checkpoint's encoder weights into `network` (for `model.init_from`).

    Only the encoder moves: a pretrained masked-LM encoder starts a classifier whose head is
    new. Returns the number of tensors copied.
    """
    checkpoint = read_checkpoint(path)
    source = checkpoint["hyper_parameters"]
    target_vocab = network.encoder.config.vocab_size
    try:
        source_vocab = int(source["model"]["vocab_size"])
        source_pool = stem_downsample(
            int(source["model"].get("stem_pool", 1)), int(source["model"].get("stem_layers", 1))
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(
            f"model.init_from={path}: its hyper-parameters are damaged or of another version "
            f"({type(error).__name__}: {str(error)[:200]}); use a checkpoint written by "
            "bigbird-genomics-train"
        ) from error
    if source_vocab != target_vocab:
        raise CheckpointError(
            f"model.init_from={path}: its vocabulary has {source['model']['vocab_size']} tokens "
            f"but this run's tokenizer has {target_vocab}; use the same tokenizer.k/stride"
        )
    prefix = "network.encoder."
    state = {
        key[len(prefix):]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(prefix)
    }
    if source_pool != network.encoder.config.downsample:
        log.warning(
            "model.init_from=%s was trained with a stem pooling by %d, this run pools by %d: a "
            "position now spans a different stretch of DNA, which fine-tuning has to relearn",
            path, source_pool, network.encoder.config.downsample,
        )
    # A stem-less encoder (say, pretrained with task=mlm, model=small) may start a run with a
    # stem (model=small_conv), or a one-stage stem a deeper tower: the stem parts the source
    # lacks start fresh, everything else is copied.
    fresh_stem = [key for key in network.encoder.state_dict() if key.startswith("stem.")]
    fresh_stem = [key for key in fresh_stem if key not in state]
    if fresh_stem:
        log.info("model.init_from=%s lacks these stem weights, which start from scratch: %s",
                 path, ", ".join(fresh_stem))
    try:
        missing, unexpected = network.encoder.load_state_dict(state, strict=False)
        if unexpected or set(missing) - set(fresh_stem):
            raise RuntimeError(f"missing keys {missing}, unexpected keys {unexpected}")
    except RuntimeError as error:
        raise CheckpointError(
            f"model.init_from={path}: its encoder shape differs from model=... of this run "
            f"({error}); choose the same model size (and no deeper model.stem_layers)"
        ) from error
    return len(state)
