"""Whole-genome `predict`: kbp/s, bounded memory, and what the genome tracks cost to write.

A tiny demo-trained promoter model scans the E. coli K-12 genome (4.6 Mbp,
../shared/data/genomes) with predict's defaults (window = the training examples' length, half
overlap, both strands), and a 0.5 Mbp prefix of it: if peak RSS is the same for both, memory
does not grow with the genome (records, windows and scores stream; per-window results go to a
scratch file). Each scan runs in its own process pinned to --threads torch threads.

Writers: on the full genome's windows, the bedGraph and the bigWig writers that `predict
--bedgraph` / `--bigwig` call are timed on the same window file.

Backends: `predict` has no attention-backend option (the backend is a training setting stored
in the checkpoint), so the "dense" rows scan with a copy of the checkpoint whose attention
backend is `dense` (the boolean-mask reference of the same sparse pattern), weights untouched.

Usage: python benchmarks/genome_scan.py [--json OUT] [--checkpoint CKPT] [--backends block,dense]
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

REPO = Path(__file__).resolve().parents[1]
ECOLI = REPO.parent / "shared" / "data" / "genomes" / "ecoli_k12_mg1655.fa.gz"
PREFIX_MBP = 0.5


def peak_rss_mib() -> float:
    """This process's high-water mark (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def train_tiny(out_dir: Path, steps: int) -> Path:
    """A tiny promoter model from the demo experiment (300 bp records), `steps` batches."""
    from bigbird_genomics.builders.demo import write_demo_data
    from bigbird_genomics.tokens.build import tokenize_fasta
    from bigbird_genomics.tokens.kmers import KmerTokenizer

    demo = write_demo_data(out_dir / "demo", seed=0)
    dataset = tokenize_fasta(
        demo["promoter"], out_dir / "data", KmerTokenizer(6, 1), max_tokens=319
    )
    command = [
        str(Path(sys.executable).parent / "bigbird-genomics-train"),
        "experiment=promoter_demo",
        f"data.dataset={dataset}",
        "logger=csv",
        "callbacks.progress_bar=null",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={steps}",
        "trainer.limit_val_batches=2",
        f"hydra.run.dir={out_dir / 'run'}",
    ]
    env = dict(os.environ, WANDB_MODE="disabled")
    subprocess.run(command, check=True, capture_output=True, env=env)
    return out_dir / "run" / "checkpoints" / "best.ckpt"


def with_backend(checkpoint: Path, backend: str, out: Path) -> Path:
    """A copy of `checkpoint` whose attention backend is `backend` (weights untouched)."""
    import torch

    data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    data["hyper_parameters"]["attention"]["backend"] = backend
    torch.save(data, out)
    return out


def write_plain(scratch: Path, max_bp: int | None) -> tuple[Path, int]:
    """The genome (or its first `max_bp`) as plain FASTA; returns (path, bp)."""
    from bigbird_genomics.io.fasta import read_fasta, write_fasta

    record = next(iter(read_fasta(ECOLI)))
    sequence = record.text if max_bp is None else record.text[:max_bp]
    path = scratch / f"genome_{len(sequence)}.fa"
    write_fasta(path, [(record.id, sequence)])
    return path, len(sequence)


def worker(args: argparse.Namespace) -> None:
    """One scan (and, with --writers, the writer timings); prints a JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    from bigbird_genomics.inference.checkpoint import load_checkpoint
    from bigbird_genomics.inference.scan import _window_entries, _write_bedgraph, predict_fasta
    from bigbird_genomics.io.bigwig import write_bigwig

    model = load_checkpoint(args.worker_checkpoint)
    out = args.worker_out
    started = time.perf_counter()
    summary = predict_fasta(
        model, args.worker_fasta, out / "scan.tsv", bedgraph=out / "scan.bedGraph",
        batch_size=args.batch_size, progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    row = {
        "bp": summary.num_bases,
        "windows": summary.num_windows,
        "window_bp": summary.plan.window_bp,
        "step_bp": summary.plan.step_bp,
        "window_source": summary.plan.source,
        "seconds": seconds,
        "kbp_per_s": summary.num_bases / seconds / 1e3,
        "peak_rss_mib": peak_rss_mib(),
    }
    if args.writers:
        # the wide window file predict writes: record, start, end, one value per label
        wide = out / "windows.tsv"
        with (out / "scan.bedGraph").open() as source, wide.open("w") as target:
            target.writelines(line for line in source if not line.startswith("track"))
        started = time.perf_counter()
        _write_bedgraph(wide, out / "again.bedGraph", summary.label_names[:1])
        row["bedgraph_write_s"] = time.perf_counter() - started
        started = time.perf_counter()
        write_bigwig(out / "scan.bw", summary.chrom_sizes, _window_entries(wide, 0))
        row["bigwig_write_s"] = time.perf_counter() - started
        row["bedgraph_mib"] = (out / "again.bedGraph").stat().st_size / 2**20
        row["bigwig_mib"] = (out / "scan.bw").stat().st_size / 2**20
    print(json.dumps(row))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write results here")
    parser.add_argument("--checkpoint", type=Path, help="trained checkpoint (default: train one)")
    parser.add_argument("--backends", default="block,dense", help="comma-separated")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per scan")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--worker-checkpoint", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-fasta", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--writers", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_checkpoint:
        worker(args)
        return 0
    if not ECOLI.is_file():
        print(f"skipped: E. coli genome not found at {ECOLI} (see ../shared/data/README.md)")
        return 0

    with tempfile.TemporaryDirectory(prefix="bench_genome_scan.") as scratch_name:
        scratch = Path(scratch_name)
        checkpoint, model_source = args.checkpoint, "--checkpoint"
        if checkpoint is None:
            checkpoint = train_tiny(scratch / "train", args.train_steps)
            model_source = f"tiny demo promoter model trained here for {args.train_steps} steps"
        genomes = [write_plain(scratch, int(PREFIX_MBP * 1e6)), write_plain(scratch, None)]
        rows = []
        for backend in args.backends.split(","):
            model_copy = with_backend(checkpoint, backend, scratch / f"{backend}.ckpt")
            for fasta, bp in genomes:
                out = scratch / f"{backend}_{bp}"
                out.mkdir()
                command = [
                    sys.executable, __file__,
                    "--worker-checkpoint", str(model_copy),
                    "--worker-fasta", str(fasta),
                    "--worker-out", str(out),
                    "--threads", str(args.threads),
                    "--batch-size", str(args.batch_size),
                ]  # fmt: skip
                if bp == genomes[-1][1] and backend == args.backends.split(",")[0]:
                    command.append("--writers")
                done = subprocess.run(command, check=True, capture_output=True, text=True)
                rows.append({"backend": backend, **json.loads(done.stdout.splitlines()[-1])})

    first = rows[0]
    print(f"model: {model_source}")
    print(
        f"genome: {ECOLI.name}; window {first['window_bp']} bp ({first['window_source']}), "
        f"step {first['step_bp']} bp, both strands; torch threads: {args.threads}"
    )
    print(f"{'backend':<8} {'Mbp':>6} {'windows':>8} {'seconds':>8} {'kbp/s':>7} {'peak MiB':>9}")
    for row in rows:
        print(
            f"{row['backend']:<8} {row['bp'] / 1e6:>6.2f} {row['windows']:>8} "
            f"{row['seconds']:>8.1f} {row['kbp_per_s']:>7.1f} {row['peak_rss_mib']:>9.0f}"
        )
    writers = next(row for row in rows if "bigwig_write_s" in row)
    print(
        f"writers on {writers['windows']} windows: bedGraph {writers['bedgraph_write_s']:.2f} s "
        f"({writers['bedgraph_mib']:.1f} MiB), bigWig {writers['bigwig_write_s']:.2f} s "
        f"({writers['bigwig_mib']:.1f} MiB)"
    )
    if args.json:
        payload = {
            "benchmark": "predict genome scan",
            "genome": ECOLI.name,
            "model": model_source,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "runs": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
