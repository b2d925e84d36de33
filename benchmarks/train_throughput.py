"""Benchmark full training steps (forward, backward, AdamW) of whole sequence classifiers.

Models, all randomly initialised from configs (nothing is downloaded), same width/depth/heads:
  ours          bigbird_genomics GenomicsModel (BigBird block 64, window 3, global 2, random 3,
                backend auto = `block` on CPU, `triton` or `block` on CUDA); its [CLS] head lets
                the last layer compute row 0 alone (`GenomicsModel.first_row_only`)
  ours_all_rows `ours` with every row of the last layer computed, as transformers' models do
  ours_dense    the same encoder with backend="full" (ordinary attention, no sparsity)
  ours_conv     `ours` with conf/model/small_conv.yaml's stem (Conv1d over the k-mer embeddings,
                max-pooled: the blocks see 1/stem_pool of the tokens). A different model, not a
                faster kernel: it answers what a classifier of N tokens costs with the stem
  ours_plain / ours_balanced   `ours` with backend `flex`, plain or balanced layout (CUDA only)
  ours_triton   `ours` with backend `triton` (the project's Triton kernels; CUDA only)
  ours_compiled / ours_triton_compiled   the same under torch.compile (attention excluded from
                the graphs: it calls its own kernels), to measure what fusing the rest gains
  hf_bigbird    transformers BigBirdForSequenceClassification (block_sparse, block 64, 3 random)
  hf_bert_sdpa  transformers BertForSequenceClassification with attn_implementation="sdpa"

Reported: tokens/s (batch * N / median step time) and peak memory. With --profile, one more
step runs under torch.profiler and the self CPU time of its operators is summed into classes
(PROFILE_CLASSES: attention kernels and their gathers, linear layers' matrix products,
everything else). Each (model, N) runs in a
fresh subprocess so peak memory is its own: on CPU the peak resident set during the timed steps
(VmHWM, reset through /proc/self/clear_refs) minus the resident size after warm-up; on CUDA
torch.cuda.max_memory_allocated minus memory allocated after warm-up.

    python benchmarks/train_throughput.py --size small --ns 1024 4096 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = (
    "ours",
    "ours_all_rows",
    "ours_dense",
    "ours_conv",
    "ours_plain",
    "ours_balanced",
    "ours_triton",
    "ours_compiled",
    "ours_triton_compiled",
    "hf_bigbird",
    "hf_bert_sdpa",
)
DEFAULT_MODELS = ("ours", "ours_dense", "hf_bigbird", "hf_bert_sdpa")
SIZES = {  # hidden, layers, heads, intermediate (as conf/model/*.yaml)
    "tiny": (32, 2, 2, 64),
    "small": (256, 4, 4, 1024),
    "base": (768, 12, 12, 3072),
}
VOCAB = 4101  # 6-mers + 5 special tokens
BLOCK, WINDOW, GLOBAL, RANDOM = 64, 3, 2, 3
REPO = Path(__file__).resolve().parent.parent
# Operator-name fragments of each class in --profile (first match wins; the rest is "other").
# Linear layers run as addmm/mm (forward and backward); transformers' BigBird attention runs as
# bmm/einsum, ours through the CPU flash kernels with index_select/index_add_ for the gathers.
PROFILE_CLASSES = {
    "attention": (
        "flash_attention", "index_select", "index_add", "bmm", "softmax", "logsumexp",
        "BlockSparseCpuAttention", "_efficient_attention", "_scaled_dot_product",
    ),
    "linear": ("aten::addmm", "aten::mm"),
}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=tuple(SIZES), default="small")
    parser.add_argument("--ns", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(DEFAULT_MODELS))
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="autocast dtype (bfloat16 on GPU)",
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the list of results here")
    parser.add_argument(
        "--profile", action="store_true", help="time shares of attention / linear / other"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one measurement
    return parser.parse_args(argv)


# ------------------------------------------------------------------ worker (one model, one N)
def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _stem_settings() -> dict[str, int]:
    """stem_kernel / stem_pool of conf/model/small_conv.yaml (one source of truth)."""
    import yaml

    config = yaml.safe_load((REPO / "conf" / "model" / "small_conv.yaml").read_text())
    return {"stem_kernel": int(config["stem_kernel"]), "stem_pool": int(config["stem_pool"])}


def _build(name: str, size: str, n: int):
    import torch

    hidden, layers, heads, intermediate = SIZES[size]
    if name.startswith("ours"):
        compiled = name.endswith("_compiled")
        name = name.removesuffix("_compiled")
        from bigbird_genomics.attention import flex
        from bigbird_genomics.model.network import GenomicsModel

        if name in ("ours_plain", "ours_balanced"):
            flex.BALANCED_DEFAULT = name == "ours_balanced"  # this worker process only

        attention = {
            "block_size": BLOCK,
            "num_window_blocks": WINDOW,
            "num_global_blocks": GLOBAL,
            "num_random_blocks": RANDOM,
            "backend": {
                "ours_dense": "full",
                "ours_plain": "flex",
                "ours_balanced": "flex",
                "ours_triton": "triton",
            }.get(name, "auto"),
        }
        encoder = {
            "vocab_size": VOCAB,
            "hidden_size": hidden,
            "num_layers": layers,
            "num_heads": heads,
            "intermediate_size": intermediate,
            "max_tokens": n,
        }
        if name == "ours_conv":
            encoder.update(_stem_settings())
        model = GenomicsModel(encoder, attention, "binary", 1)
        model.first_row_only = name != "ours_all_rows"
        forward = model
        if compiled:
            from bigbird_genomics.model import encoder as encoder_module

            # this worker process only: attention stays eager, the rest is compiled and fused
            for function in ("bigbird_attention", "first_row_attention"):
                setattr(encoder_module, function,
                        torch.compiler.disable(getattr(encoder_module, function)))
            forward = torch.compile(model)

        def step(tokens, mask, labels):
            logits = forward(tokens, mask)
            return torch.nn.functional.binary_cross_entropy_with_logits(
                logits[:, 0], labels.float()
            )

        return model, step
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BigBirdConfig,
        BigBirdForSequenceClassification,
    )

    common = {
        "vocab_size": VOCAB,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
        "max_position_embeddings": n,
        "num_labels": 2,
    }
    if name == "hf_bigbird":
        config = BigBirdConfig(
            **common, attention_type="block_sparse", block_size=BLOCK, num_random_blocks=RANDOM
        )
        model = BigBirdForSequenceClassification(config)
    else:
        config = BertConfig(**common, attn_implementation="sdpa")
        model = BertForSequenceClassification(config)

    def step(tokens, mask, labels):
        return model(input_ids=tokens, attention_mask=mask.long(), labels=labels).loss

    return model, step


def worker(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    model, loss_of = _build(spec["model"], spec["size"], spec["n"])
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(5, VOCAB, (spec["batch"], spec["n"]), device=device)
    mask = torch.ones_like(tokens, dtype=torch.bool)
    labels = torch.randint(0, 2, (spec["batch"],), device=device)
    dtype = getattr(torch, spec["dtype"])
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)

    cpu_seconds = []

    def one_step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        with autocast:
            loss = loss_of(tokens, mask, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        cpu_seconds.append(time.process_time() - start_cpu)
        return time.perf_counter() - start

    for _ in range(spec["warmup"]):
        one_step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        import ctypes
        import gc

        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # return freed warm-up memory to the OS
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS
        base = _rss_kib("VmRSS:") * 1024
    cpu_seconds.clear()
    times = [one_step() for _ in range(spec["steps"])]
    cpu_median = statistics.median(cpu_seconds)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = _rss_kib("VmHWM:") * 1024 - base
    seconds = statistics.median(times)
    shares = _profile_shares(one_step) if spec.get("profile") else None
    return {
        **spec,
        **({"profile_ms": shares} if shares else {}),
        "step_s": seconds,
        "tokens_per_s": spec["batch"] * spec["n"] / seconds,
        # Process CPU time: on a shared machine it leaves out time spent waiting for a core.
        "step_cpu_s": cpu_median,
        "tokens_per_cpu_s": spec["batch"] * spec["n"] / cpu_median,
        "peak_mib": peak / 2**20,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def _profile_shares(one_step) -> dict[str, float]:  # noqa: ANN001
    """Self CPU milliseconds per PROFILE_CLASSES class over one profiled step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        one_step()
    totals = {name: 0.0 for name in (*PROFILE_CLASSES, "other")}
    for event in prof.key_averages():
        kind = next(
            (name for name, parts in PROFILE_CLASSES.items() if any(p in event.key for p in parts)),
            "other",
        )
        totals[kind] += event.self_cpu_time_total / 1000
    return {name: round(ms, 1) for name, ms in totals.items()}


# ------------------------------------------------------------------------------- driver
def measure(spec: dict) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return {**spec, "error": reason[:200]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_table(results: list[dict]) -> None:
    print(
        f"{'N':>6}  {'model':<13} {'tokens/s':>10} {'step s':>8} {'tokens/cpu-s':>12} "
        f"{'peak MiB':>9}  vs hf_bigbird (wall / cpu)"
    )
    for n in sorted({r["n"] for r in results}):
        rows = [r for r in results if r["n"] == n]
        reference = next((r for r in rows if r["model"] == "hf_bigbird" and "error" not in r), None)
        for r in rows:
            if "error" in r:
                print(f"{n:>6}  {r['model']:<13} {'error: ' + r['error']}")
                continue
            ratio = "-"
            if reference:
                ratio = (
                    f"{r['tokens_per_s'] / reference['tokens_per_s']:.2f}x / "
                    f"{r['tokens_per_cpu_s'] / reference['tokens_per_cpu_s']:.2f}x"
                )
            shares = ""
            if r.get("profile_ms"):
                total = sum(r["profile_ms"].values()) or 1.0
                shares = "  " + ", ".join(
                    f"{name} {100 * ms / total:.0f}%" for name, ms in r["profile_ms"].items()
                )
            print(
                f"{n:>6}  {r['model']:<13} {r['tokens_per_s']:>10.0f} {r['step_s']:>8.3f} "
                f"{r['tokens_per_cpu_s']:>12.0f} {r['peak_mib']:>9.0f}  {ratio}{shares}"
            )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    results = []
    for n in args.ns:
        for model in args.models:
            spec = {
                "model": model,
                "n": n,
                "size": args.size,
                "device": args.device,
                "dtype": args.dtype,
                "batch": args.batch,
                "threads": args.threads,
                "warmup": args.warmup,
                "steps": args.steps,
                "profile": args.profile,
            }
            results.append(measure(spec))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print_table(results)
    if args.json:
        temporary = args.json.with_suffix(".tmp")
        temporary.write_text(json.dumps(results, indent=2) + "\n")
        os.replace(temporary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
