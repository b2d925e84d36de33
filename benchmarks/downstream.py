"""Speed of `variant-effect` and `ism` against naive loops with the same model, side by side.

- variant-effect: variants/s of `score_variants` (streamed VCF, batched REF+ALT windows) against
  a loop that scores the REF window, then the ALT window, one variant at a time.
- ism of a 1 kbp record (several windows of the checkpoint's context): seconds of
  `ism_record` (only the windows a mutation touches, only the touched k-mers re-encoded, all
  mutants batched), of the same with every window of each mutant re-scored (batching alone),
  and of the naive per-mutant loop (`naive_ism`: each mutant record built whole and all its
  windows scored, one call per mutant), timed on `--naive-positions` positions and scaled to
  the record; the same loop with one call per window of each mutant; and `--method grad`.
  The fast and naive effect matrices are compared.

CPU, one torch thread. Model: --checkpoint, else the demo promoter experiment trained here for
--train-batches batches (speed does not depend on how well it is trained).

Usage: python benchmarks/downstream.py --json OUT.json [--checkpoint CKPT] [--variants 300]
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


def train_checkpoint(root: Path, batches: int) -> Path:
    from bigbird_genomics.builders.demo import write_demo_data
    from bigbird_genomics.tokens.build import tokenize_fasta
    from bigbird_genomics.tokens.kmers import KmerTokenizer

    demo = write_demo_data(root / "demo", seed=0)
    dataset = tokenize_fasta(demo["promoter"], root / "data", KmerTokenizer(6, 1), max_tokens=319)
    command = [
        str(Path(sys.executable).parent / "bigbird-genomics-train"), "experiment=promoter_demo",
        f"data.dataset={dataset}", f"hydra.run.dir={root / 'run'}", "trainer.max_epochs=1",
        f"trainer.limit_train_batches={batches}", "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0", "logger=csv", "callbacks.progress_bar=null",
    ]
    env = dict(os.environ, WANDB_MODE="disabled")
    subprocess.run(command, check=True, capture_output=True, env=env)
    return root / "run" / "checkpoints" / "best.ckpt"


def write_vcf(path: Path, sequence: str, contig: str, count: int, seed: int) -> Path:
    """`count` SNVs and small indels (every 5th) at random clean places of `sequence`."""
    rng = np.random.default_rng(seed)
    positions = sorted(set(int(p) for p in rng.integers(1000, len(sequence) - 1000, count * 2)))
    lines = [
        "##fileformat=VCFv4.2", f"##contig=<ID={contig},length={len(sequence)}>",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    for number, start in enumerate(positions):
        if len(lines) - 3 == count:
            break
        ref = sequence[start].upper()
        if ref not in "ACGT":
            continue
        if number % 5 == 4:
            ref, alt = sequence[start : start + 3].upper(), ref  # 2-bp deletion
            if "N" in ref:
                continue
        else:
            alt = "ACGT".replace(ref, "")[number % 3]
        lines.append(f"{contig}\t{start + 1}\tv{number}\t{ref}\t{alt}\t.\t.\t.")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint (default: train)")
    parser.add_argument("--train-batches", type=int, default=20)
    parser.add_argument("--variants", type=int, default=300)
    parser.add_argument("--naive-variants", type=int, default=100)
    parser.add_argument("--ism-bp", type=int, default=1000)
    parser.add_argument("--naive-positions", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from bigbird_genomics.builders.demo import write_demo_data
    from bigbird_genomics.inference.checkpoint import load_checkpoint
    from bigbird_genomics.inference.ism import grad_record, ism_record, naive_ism
    from bigbird_genomics.inference.scan import iter_windows, scan_plan
    from bigbird_genomics.inference.variant_effect import (
        OK,
        effect_scores,
        score_variants,
        variant_windows,
    )
    from bigbird_genomics.io.fasta import read_fasta

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        source = "given"
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint, source = train_checkpoint(root, args.train_batches), "trained here"
        model = load_checkpoint(checkpoint)
        demo = write_demo_data(root / "bench_demo", seed=0)
        chromosome = next(iter(read_fasta(demo["chromosome"])))
        sequence = chromosome.text
        vcf = write_vcf(root / "bench.vcf", sequence, chromosome.id, args.variants, seed=1)

        # --- variant effect -------------------------------------------------------------
        started = time.perf_counter()
        summary = score_variants(model, demo["chromosome"], vcf, root / "ve.tsv",
                                 batch_size=args.batch_size, progress=False)
        batched_s = time.perf_counter() - started
        scored = summary.statuses[OK]
        rows = [line.split("\t") for line in (root / "ve.tsv").read_text().splitlines()[1:]]
        window = summary.window_bp
        started = time.perf_counter()
        naive_rows = []
        for row in rows[: args.naive_variants]:
            start = int(row[1]) - 1
            status, ref_window, alt_window = variant_windows(
                row[0], start, row[3], row[4], window, len(sequence),
                lambda _, a, b: sequence[a:b],
            )
            if status != OK:
                continue
            p_ref = model.predict_proba([model.tokenizer.encode(ref_window)])
            p_alt = model.predict_proba([model.tokenizer.encode(alt_window)])
            naive_rows.append((row, effect_scores(p_ref[0], p_alt[0])))
        naive_s = time.perf_counter() - started
        agreement = max(
            abs(float(row[8]) - float(scores[2, 0])) for row, scores in naive_rows
        )
        variant_result = {
            "variants_scored": scored, "window_bp": window, "batch_size": args.batch_size,
            "batched_s": batched_s, "batched_variants_per_s": scored / batched_s,
            "naive_variants": len(naive_rows), "naive_s": naive_s,
            "naive_variants_per_s": len(naive_rows) / naive_s,
            "max_abs_diff_batched_vs_naive": agreement,
        }
        variant_result["speedup"] = (
            variant_result["batched_variants_per_s"] / variant_result["naive_variants_per_s"]
        )

        # --- ISM of a 1 kbp record --------------------------------------------------------
        # the region around the first planted promoter, so the record has real structure
        first_site = int(demo["chromosome_motifs"].read_text().split("\t")[1])
        start = max(0, first_site + 150 - args.ism_bp // 2)
        record = sequence[start : start + args.ism_bp].upper()
        timings = {}
        started = time.perf_counter()
        fast = ism_record(model, "bench", record, batch_size=args.batch_size)
        timings["ism_touched_batched_s"] = time.perf_counter() - started
        started = time.perf_counter()
        every = ism_record(model, "bench", record, batch_size=args.batch_size,
                           touched_only=False)
        timings["ism_all_windows_batched_s"] = time.perf_counter() - started
        started = time.perf_counter()
        naive = naive_ism(model, record, max_bases=args.naive_positions)
        naive_part_s = time.perf_counter() - started
        timings["ism_naive_s_measured"] = naive_part_s
        timings["ism_naive_s_scaled"] = naive_part_s * len(record) / args.naive_positions
        # the loop a user would write around predict_proba: one call per window of each mutant
        started = time.perf_counter()
        span = (len(record) - args.naive_positions) // 2
        windows = list(iter_windows(len(record), scan_plan(model)))
        for position in range(span, span + args.naive_positions):
            for other in "ACGT".replace(record[position], ""):
                mutant = record[:position] + other + record[position + 1 :]
                for window_start, window_end in windows:
                    model.predict_proba([model.tokenizer.encode(mutant[window_start:window_end])])
        per_window_s = time.perf_counter() - started
        timings["ism_naive_per_window_s_scaled"] = per_window_s * len(record) / args.naive_positions
        started = time.perf_counter()
        grad_record(model, "bench", record)
        timings["grad_s"] = time.perf_counter() - started
        centre = (len(record) - args.naive_positions) // 2
        fast_part = fast.effects[:, centre : centre + args.naive_positions]
        ism_result = {
            "record_bp": len(record), "windows": fast.num_windows,
            "mutants": int(3 * len(record)),
            "forward_windows_touched": fast.num_forward_windows,
            "forward_windows_all": every.num_forward_windows,
            "naive_positions_timed": args.naive_positions,
            **timings,
            "speedup_batching": timings["ism_naive_s_scaled"]
            / timings["ism_all_windows_batched_s"],
            "speedup_touched_windows": timings["ism_all_windows_batched_s"]
            / timings["ism_touched_batched_s"],
            "speedup_total": timings["ism_naive_s_scaled"] / timings["ism_touched_batched_s"],
            "speedup_total_vs_per_window_loop": timings["ism_naive_per_window_s_scaled"]
            / timings["ism_touched_batched_s"],
            "max_abs_diff_fast_vs_naive": float(np.abs(fast_part - naive).max()),
        }

    print(f"model: {source} ({checkpoint}); torch threads: {torch.get_num_threads()}; CPU")
    print("\nvariant-effect")
    print(f"{'method':<34}{'variants':>10}{'seconds':>10}{'variants/s':>12}")
    print(f"{'batched (score_variants)':<34}{scored:>10}{batched_s:>10.2f}"
          f"{variant_result['batched_variants_per_s']:>12.1f}")
    print(f"{'naive (one variant at a time)':<34}{len(naive_rows):>10}{naive_s:>10.2f}"
          f"{variant_result['naive_variants_per_s']:>12.1f}")
    print(f"speed-up {variant_result['speedup']:.1f}x; max |diff| batched vs naive "
          f"{agreement:.2g}")
    print(f"\nism of a {len(record)} bp record ({fast.num_windows} windows, "
          f"{3 * len(record)} mutants)")
    print(f"{'method':<44}{'windows run':>12}{'seconds':>10}")
    print(f"{'touched windows, batched (ism)':<44}{fast.num_forward_windows:>12}"
          f"{timings['ism_touched_batched_s']:>10.2f}")
    print(f"{'all windows, batched':<44}{every.num_forward_windows:>12}"
          f"{timings['ism_all_windows_batched_s']:>10.2f}")
    print(f"{'naive per-mutant loop (scaled from ' + str(args.naive_positions) + ' bp)':<44}"
          f"{3 * len(record) * fast.num_windows:>12}{timings['ism_naive_s_scaled']:>10.2f}")
    print(f"{'naive per-mutant, per-window loop (scaled)':<44}"
          f"{3 * len(record) * fast.num_windows:>12}"
          f"{timings['ism_naive_per_window_s_scaled']:>10.2f}")
    print(f"{'gradient x input (grad)':<44}{'-':>12}{timings['grad_s']:>10.2f}")
    print(f"speed-up: batching {ism_result['speedup_batching']:.1f}x, touched windows "
          f"{ism_result['speedup_touched_windows']:.1f}x, total "
          f"{ism_result['speedup_total']:.1f}x (vs the per-window loop "
          f"{ism_result['speedup_total_vs_per_window_loop']:.1f}x); max |effect| difference "
          "fast vs naive "
          f"{ism_result['max_abs_diff_fast_vs_naive']:.2g}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"model": source, "threads": 1, "variant_effect": variant_result,
                   "ism": ism_result}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
