"""Pictures of in-silico mutagenesis: the effect track of a record and a sequence logo of its
strongest stretch (logomaker). Takes arrays, not files or models: `reporting` never imports
inference, the `ism` command hands the effect matrix over."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import logomaker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bigbird_genomics.io.atomic import atomic_path  # noqa: E402

BASES = "ACGT"
LOGO_WIDTH = 30


def logo_matrix(effects: np.ndarray) -> np.ndarray:
    """[positions, 4] effects centred per position (each row sums to 0): the reference base
    stands tall when changing it lowers the score, as in saturation-mutagenesis logos."""
    return effects - effects.mean(axis=1, keepdims=True)


def strongest_stretch(effects: np.ndarray, width: int = LOGO_WIDTH) -> tuple[int, int]:
    """(start, end) of `width` positions centred on the largest |effect| of [positions, 4]."""
    per_position = np.abs(effects).max(axis=1)
    centre = int(np.argmax(per_position))
    start = max(0, min(centre - width // 2, len(per_position) - width))
    return start, min(len(per_position), start + width)


def plot_ism(
    effects: np.ndarray,
    sequence: str,
    out_png: str | os.PathLike[str],
    *,
    offset: int = 0,
    title: str = "",
    label: str = "",
    width: int = LOGO_WIDTH,
) -> Path:
    """Effect track (mean effect of the 3 substitutions per position, and the strongest one)
    above a logo of the `width` bp around the largest |effect|. `effects` is [positions, 4]
    in A, C, G, T order; positions are 1-based record coordinates from `offset`."""
    if effects.ndim != 2 or effects.shape[1] != 4 or effects.shape[0] != len(sequence):
        raise ValueError(
            f"effects must be [{len(sequence)}, 4] for a {len(sequence)} bp sequence, got "
            f"{effects.shape}"
        )
    figure, (track_axes, logo_axes) = plt.subplots(
        2, 1, figsize=(11, 5.5), gridspec_kw={"height_ratios": [1.2, 1]}
    )
    positions = offset + 1 + np.arange(len(sequence))
    mean_effect = effects.sum(axis=1) / 3  # the reference base's entry is 0
    strongest = effects[np.arange(len(effects)), np.abs(effects).argmax(axis=1)]
    track_axes.fill_between(positions, mean_effect, step="mid", color="tab:blue", alpha=0.7,
                            label="mean of the 3 substitutions")
    track_axes.plot(positions, strongest, drawstyle="steps-mid", color="tab:red", lw=0.7,
                    label="strongest substitution")
    track_axes.axhline(0, color="black", lw=0.5)
    start, end = strongest_stretch(effects, width)
    track_axes.axvspan(positions[start] - 0.5, positions[end - 1] + 0.5, color="gold", alpha=0.3,
                       label="logo below")
    track_axes.set_xlim(positions[0] - 0.5, positions[-1] + 0.5)
    track_axes.set_ylabel(f"{label} effect (log-odds)".strip())
    track_axes.set_title(title or "In-silico mutagenesis")
    track_axes.legend(loc="lower right", fontsize="small", ncol=3)
    frame = pd.DataFrame(logo_matrix(effects[start:end]), columns=list(BASES),
                         index=positions[start:end])
    logomaker.Logo(frame, ax=logo_axes, color_scheme="classic")
    logo_axes.axhline(0, color="black", lw=0.5)
    logo_axes.set_ylabel("centred effect")
    logo_axes.set_xlabel(f"position (reference {sequence[start:end]})")
    figure.tight_layout()
    try:
        with atomic_path(out_png) as temporary:
            figure.savefig(temporary, dpi=110, bbox_inches="tight", format="png")
    finally:
        plt.close(figure)
    return Path(out_png)
