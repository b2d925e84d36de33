"""Genome-scan throughput of `bigbird-genomics predict`: bp/s per attention backend, side by side.

The same trained demo model (same weights, same context) scans the real E. coli K-12 genome
(../shared/data/genomes) once per attention backend:
- block: BigBird block-sparse attention by gathering key blocks (the fast sparse path),
- dense: the same sparse pattern as a boolean mask over full attention (the reference),
- full: ordinary full attention, no sparsity (the dense baseline),
- flex: FlexAttention, when asked for with --backends.
A `_all_rows` suffix (default: block_all_rows) runs that backend with every row of the last layer
computed, where the [CLS] classifier otherwise computes only row 0 (`GenomicsModel.first_row_only`).
That last layer's row 0 takes the same code in every backend, so the comparison with the dense
run checks it only through the `_all_rows` run. A `_bf16` suffix (e.g. block_bf16) scans with
`--precision bfloat16` (bf16 autocast; its scores differ from float32 by bf16 rounding).
Each backend runs in its own subprocess (pinned to --threads torch threads), timing the whole
`predict_fasta` path: FASTA parsing, tokenization, windows, model, TSV + bedGraph writing.
Peak RSS per run shows the scan's memory stays bounded. The bedGraphs are compared with the
dense-mask run: block must agree with it (same pattern), full need not (different attention).

Model: --checkpoint, else the demo workflow's results/runs/promoter/checkpoints/best.ckpt, else
a tiny promoter model trained here for --train-steps steps (speed does not depend on how well
it is trained; the output says which was used).

Usage: python benchmarks/predict.py --json OUT [--checkpoint CKPT] [--max-mbp 0.5 | 0 = all]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ECOLI = REPO.parent / "shared" / "data" / "genomes" / "ecoli_k12_mg1655.fa.gz"
WORKFLOW_CHECKPOINT = REPO / "results" / "runs" / "promoter" / "checkpoints" / "best.ckpt"


def peak_rss_mib() -> float:
    """This process's high-water mark (VmHWM): the scan's own peak, as it runs alone here."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def train_tiny(out_dir: Path, steps: int) -> Path:
    """A tiny promoter model from the demo experiment: one epoch cut to `steps` batches."""
    command = [
        str(Path(sys.executable).parent / "bigbird-genomics-train"),
        "experiment=promoter_demo",
        "logger=csv",
        "callbacks.progress_bar=null",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={steps}",
        "trainer.limit_val_batches=2",
        f"hydra.run.dir={out_dir}",
    ]
    subprocess.run(command, check=True, env=dict(os.environ, WANDB_MODE="disabled"))
    return out_dir / "checkpoints" / "best.ckpt"


def with_backend(checkpoint: Path, backend: str, out: Path) -> Path:
    """A copy of `checkpoint` whose attention backend is `backend` (weights untouched)."""
    import torch

    from bigbird_genomics.inference.checkpoint import INTEGRITY_KEY, checkpoint_digests

    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    data["hyper_parameters"]["attention"]["backend"] = backend
    if INTEGRITY_KEY in data:  # the hyper-parameters changed on purpose: digest them anew
        data[INTEGRITY_KEY] = checkpoint_digests(data)
    torch.save(data, out)
    return out


def genome_prefix(max_mbp: float, out: Path) -> tuple[Path, int]:
    """The genome FASTA, or a plain FASTA of its first `max_mbp` Mbp; returns (path, bp)."""
    from bigbird_genomics.io.fasta import read_fasta

    record = next(iter(read_fasta(ECOLI)))
    if max_mbp <= 0:
        return ECOLI, len(record.sequence)
    length = min(len(record.sequence), int(max_mbp * 1e6))
    text = record.sequence[:length].tobytes().decode("ascii")
    lines = "\n".join(text[i : i + 60] for i in range(0, len(text), 60))
    out.write_text(f">{record.id}\n{lines}\n")
    return out, length


def worker(args: argparse.Namespace) -> None:
    """One backend, one scan; prints a JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    from bigbird_genomics.inference.checkpoint import load_checkpoint
    from bigbird_genomics.inference.scan import predict_fasta

    precision = "bfloat16" if args.worker_backend.endswith("_bf16") else "float32"
    model = load_checkpoint(args.worker_checkpoint, device=args.device, precision=precision)
    if args.worker_backend.removesuffix("_bf16").endswith("_all_rows"):
        model.network.first_row_only = False
    started = time.perf_counter()
    summary = predict_fasta(
        model,
        args.worker_fasta,
        args.worker_out / "scan.tsv",
        bedgraph=args.worker_out / "scan.bedGraph",
        batch_size=args.batch_size,
        progress=False,
    )
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "bp": summary.num_bases,
                "windows": summary.num_windows,
                "window_bp": summary.plan.window_bp,
                "overlap_bp": summary.plan.overlap_bp,
                "context_tokens": model.max_tokens,
                "seconds": seconds,
                "bp_per_s": summary.num_bases / seconds,
                "windows_per_s": summary.num_windows / seconds,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def bedgraph_values(path: Path) -> np.ndarray:
    return np.array(
        [
            float(line.split("\t")[3])
            for line in path.read_text().splitlines()
            if line[:5] != "track"
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, required=False, help="write results here")
    parser.add_argument("--checkpoint", type=Path, help="trained checkpoint (default: see above)")
    parser.add_argument(
        "--backends", default="block,block_all_rows,dense,full", help="comma-separated"
    )
    parser.add_argument("--max-mbp", type=float, default=0.5, help="genome prefix; 0 = all")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per scan")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--worker-backend", help=argparse.SUPPRESS)
    parser.add_argument("--worker-checkpoint", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-fasta", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_backend:
        worker(args)
        return 0
    if not ECOLI.is_file():
        print(f"skipped: E. coli genome not found at {ECOLI} (see ../shared/data/README.md)")
        return 0

    with tempfile.TemporaryDirectory(prefix="bench_predict.") as scratch_name:
        scratch = Path(scratch_name)
        checkpoint, model_source = args.checkpoint, "--checkpoint"
        if checkpoint is None and WORKFLOW_CHECKPOINT.is_file():
            checkpoint, model_source = WORKFLOW_CHECKPOINT, "demo workflow promoter model"
        if checkpoint is None:
            checkpoint = train_tiny(scratch / "train", args.train_steps)
            model_source = f"tiny promoter model trained here for {args.train_steps} steps"
        fasta, genome_bp = genome_prefix(args.max_mbp, scratch / "genome.fa")
        results = {}
        for backend in args.backends.split(","):
            out = scratch / backend
            out.mkdir()
            model_copy = with_backend(
                checkpoint,
                backend.removesuffix("_bf16").removesuffix("_all_rows"),
                out / "model.ckpt",
            )
            command = [
                sys.executable, __file__,
                "--worker-backend", backend,
                "--worker-checkpoint", str(model_copy),
                "--worker-fasta", str(fasta),
                "--worker-out", str(out),
                "--threads", str(args.threads),
                "--batch-size", str(args.batch_size),
                "--device", args.device,
            ]  # fmt: skip
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
        reference = "dense" if "dense" in results else next(iter(results))
        reference_values = bedgraph_values(scratch / reference / "scan.bedGraph")
        for backend, row in results.items():
            values = bedgraph_values(scratch / backend / "scan.bedGraph")
            row["max_abs_diff_vs_" + reference] = float(np.abs(values - reference_values).max())

    print(f"model: {model_source} ({checkpoint})")
    print(f"genome: {ECOLI.name}, {genome_bp} bp scanned; torch threads: {args.threads}")
    print(
        f"{'backend':<15} {'bp/s':>10} {'windows/s':>10} {'seconds':>8} {'peak MiB':>9} "
        f"{'max|dp| vs ' + reference:>16}"
    )
    for backend, row in results.items():
        print(
            f"{backend:<15} {row['bp_per_s']:>10.0f} {row['windows_per_s']:>10.1f} "
            f"{row['seconds']:>8.1f} {row['peak_rss_mib']:>9.0f} "
            f"{row['max_abs_diff_vs_' + reference]:>16.2e}"
        )
    if args.json:
        payload = {
            "benchmark": "predict genome scan",
            "genome": ECOLI.name,
            "genome_bp_scanned": genome_bp,
            "model": model_source,
            "checkpoint": str(checkpoint),
            "threads": args.threads,
            "batch_size": args.batch_size,
            "device": args.device,
            "backends": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
