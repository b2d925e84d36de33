"""How training writes checkpoints: with a content hash, to a temp name beside the target, then
renamed over it, so a full disk or a kill mid-write never leaves a cut-off `best.ckpt`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from bigbird_genomics.inference.checkpoint import INTEGRITY_KEY, checkpoint_digests
from bigbird_genomics.io.atomic import FILE_MODE
from bigbird_genomics.training.config_checks import ConfigError


class CheckpointSaveError(ConfigError):
    """A checkpoint that could not be written (full disk, lost mount, no permission)."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO, but atomic and hashed.

    The digests (`inference.checkpoint.checkpoint_digests`) are computed here, on the dict
    exactly as it is written, after every callback has changed it (the EMA callback swaps the
    averaged weights into `state_dict` and keeps the raw ones in `current_model_state`).
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        target = Path(path)
        checkpoint = {**checkpoint, INTEGRITY_KEY: checkpoint_digests(checkpoint)}
        temp: Path | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
            )
            temp = Path(name)
            with os.fdopen(handle, "wb") as stream:
                self.write(checkpoint, stream)
                stream.flush()
                os.fsync(stream.fileno())  # the bytes are on disk before the name moves
            temp.chmod(FILE_MODE)
            os.replace(temp, target)
        except OSError as error:
            if temp is not None:
                with contextlib.suppress(OSError):
                    temp.unlink()
            reason = error.strerror or str(error) or type(error).__name__
            raise CheckpointSaveError(
                f"cannot write checkpoint {target} ({reason}); disk full? Free space (or point "
                "hydra.run.dir at a disk with room) and resume with ckpt_path=last"
            ) from None

    def write(self, checkpoint: dict[str, Any], stream: Any) -> None:
        """Serialise `checkpoint` into an open binary stream (tests replace this)."""
        torch.save(checkpoint, stream)
