"""Benchmark BigBird attention: fwd+bwd time and peak memory vs sequence length, side by side.

Implementations (all on q, k, v [B, H, N, d], backward from a random output gradient):
  dense         F.scaled_dot_product_attention without any mask (full attention)
  block         bigbird_attention(..., backend="block")
  flex          bigbird_attention(..., backend="flex") (CUDA; FlexAttention has no CPU backward)
  flex_plain    flex with the plain layout (global rows/columns walked by one kernel program)
  flex_balanced flex with split global rows and copied global keys (attention/flex_balanced.py)
  triton        bigbird_attention(..., backend="triton") (CUDA; the project's Triton kernels)
  transformers  transformers' BigBirdBlockSparseAttention.bigbird_block_sparse_attention
                (block 64, 3 random blocks, train mode, randomly initialised, no download)
  block_bf16    `block` on bfloat16 q, k, v and gradients whatever --dtype says, so the bf16 CPU
                path (attention/matmul_kernels.py: oneDNN's bf16 GEMMs) runs beside the others
  block_bf16_flash  `block_bf16` through torch's CPU flash kernels instead (what the bf16 path
                is measured against; the backend's choice on CPUs without native bf16)
  block_baseline  `block` imported from another source tree (--baseline-src, e.g. an older
                commit unpacked by `git archive`), to compare two versions in one run

Useful FLOPs (the same count credited to every implementation, so GFLOP/s ratios are speed
ratios): the BigBird pattern actually attended, from the block layout of this configuration.
With P attended (query block, key block) pairs per head, block size b and head size d, the
forward pass is 4 * P * b^2 * d per head (2 b^2 d for QK^T and 2 b^2 d for PV per pair) and the
backward pass twice that (dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q), so fwd+bwd counts
12 * P * b^2 * d * batch * heads. Recomputation of QK^T in flash backward passes, softmax,
masking and gathers are not counted. Dense full attention does N^2 / (P b^2) times more work
than it is credited with. The sgemm rate is torch.matmul of two 2048x2048 fp32 matrices on
--threads threads (best of 5 after a warm-up), measured in a fresh process before and after the
implementations; the higher of the two is the reference for "% sgemm". Both are given by wall
clock and by process CPU time: on a shared machine the CPU-time rates ("GFLOP/s cpu",
"% sgemm cpu") leave out time spent waiting for a core.

Each (N, impl) runs in a fresh subprocess so that peak memory is its own. Peak memory on CPU is
the peak resident set size during the timed repetitions (VmHWM, reset through
/proc/self/clear_refs) minus the resident size after warm-up and malloc_trim; on CUDA it is
torch.cuda.max_memory_allocated minus the memory allocated after warm-up.

Example: python benchmarks/attention.py --device cpu --ns 4096 8192 16384 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPLS = (
    "dense", "block", "block_bf16", "block_bf16_flash", "block_baseline", "flex", "flex_plain",
    "flex_balanced", "triton", "transformers",
)  # fmt: skip
DEFAULT_IMPLS = ("dense", "block", "flex", "transformers")
BLOCK_SIZE, WINDOW_BLOCKS, GLOBAL_BLOCKS, RANDOM_BLOCKS = 64, 3, 2, 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--ns", type=int, nargs="+", default=[4096, 8192, 16384])
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(DEFAULT_IMPLS))
    parser.add_argument("--json", type=Path, help="write [{N, impl, fb_ms, peak_mib}] here")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="source tree (holding bigbird_genomics/) of block_baseline",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one measurement
    return parser.parse_args(argv)


# ---------------------------------------------------------------- worker (one N, one impl)


def _cpu_resident_mib() -> tuple[float, float]:
    """(current, peak) resident set size in MiB from /proc/self/status."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def _release_free_heap() -> None:
    """Return freed heap memory to the OS, so that reuse of it counts towards the next peak."""
    # Without glibc the peak may be underestimated (freed heap pages are reused unseen).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_cpu_peak() -> None:
    # Writing 5 resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0).
    Path("/proc/self/clear_refs").write_text("5")


def _make_function(impl: str, spec: dict, torch):  # noqa: ANN001, ANN202 - torch passed in
    if impl == "dense":
        import torch.nn.functional as F

        return F.scaled_dot_product_attention
    if impl == "block_bf16_flash":
        from bigbird_genomics.attention import matmul_kernels

        matmul_kernels.bf16_matmul_is_fast = lambda: False  # this worker process only
    if impl in ("block_baseline", "block_bf16", "block_bf16_flash"):
        impl = "block"
    if impl in ("block", "flex", "flex_plain", "flex_balanced", "triton"):
        from bigbird_genomics.attention import SparsityConfig, bigbird_attention
        from bigbird_genomics.attention.flex import flex_bigbird_attention

        config = SparsityConfig(
            block_size=BLOCK_SIZE,
            num_window_blocks=WINDOW_BLOCKS,
            num_global_blocks=GLOBAL_BLOCKS,
            num_random_blocks=RANDOM_BLOCKS,
            backend=impl.split("_")[0],
        ).validate()
        if impl in ("flex_plain", "flex_balanced"):
            balanced = impl == "flex_balanced"
            return lambda q, k, v: flex_bigbird_attention(q, k, v, config, balanced=balanced)
        return lambda q, k, v: bigbird_attention(q, k, v, config)
    return _transformers_function(spec, torch)


def _transformers_function(spec: dict, torch):  # noqa: ANN001, ANN202
    from transformers import BigBirdConfig
    from transformers.models.big_bird.modeling_big_bird import (
        BigBirdBlockSparseAttention,
        BigBirdModel,
    )

    batch, heads, tokens, head_dim = spec["batch"], spec["heads"], spec["N"], spec["head_dim"]
    config = BigBirdConfig(
        hidden_size=heads * head_dim,
        num_attention_heads=heads,
        attention_type="block_sparse",
        block_size=BLOCK_SIZE,
        num_random_blocks=RANDOM_BLOCKS,
        max_position_embeddings=max(tokens, 4096),
    )
    attention = BigBirdBlockSparseAttention(config).train()
    dtype = getattr(torch, spec["dtype"])
    real = torch.ones(batch, tokens, device=spec["device"], dtype=dtype)
    blocked, band, from_mask, to_mask = BigBirdModel.create_masks_for_block_sparse_attn(
        real, BLOCK_SIZE
    )

    def run(q, k, v):  # noqa: ANN001, ANN202
        context, _ = attention.bigbird_block_sparse_attention(
            q, k, v, band, from_mask, to_mask, blocked, blocked, heads, RANDOM_BLOCKS,
            head_dim, BLOCK_SIZE, BLOCK_SIZE, batch, tokens, tokens,
            seed=None, plan_from_length=None, plan_num_rand_blocks=None,
        )  # fmt: skip
        return context  # [B, N, H, d]

    return run


def sgemm_worker(spec: dict) -> dict:
    """GFLOP/s of torch.matmul on two 2048x2048 matrices, best of 5 after one warm-up, by wall
    clock and by process CPU time (which leaves out time spent waiting for a core)."""
    import torch

    torch.set_num_threads(spec["threads"])
    size = 2048
    a, b = (torch.randn(size, size, dtype=getattr(torch, spec["dtype"])) for _ in range(2))
    torch.matmul(a, b)
    best_wall = best_cpu = math.inf
    for _ in range(5):
        start, start_cpu = time.perf_counter(), time.process_time()
        torch.matmul(a, b)
        best_wall = min(best_wall, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    flop = 2 * size**3 / 1e9
    return {
        "sgemm_gflops": round(flop / best_wall, 1),
        "sgemm_cpu_gflops": round(flop / best_cpu, 1),
    }


def useful_gflop(spec: dict) -> float:
    """Fwd+bwd GFLOP of the attended BigBird pattern (see the module docstring)."""
    from bigbird_genomics.attention import SparsityConfig, block_layout
    from bigbird_genomics.attention.layout import num_blocks_for

    config = SparsityConfig(
        block_size=BLOCK_SIZE,
        num_window_blocks=WINDOW_BLOCKS,
        num_global_blocks=GLOBAL_BLOCKS,
        num_random_blocks=RANDOM_BLOCKS,
    )
    layout = block_layout(num_blocks_for(spec["N"], BLOCK_SIZE), config)  # one layout head
    pairs = int((layout != 0).sum())
    per_head = 12 * pairs * BLOCK_SIZE**2 * spec["head_dim"]
    return per_head * spec["batch"] * spec["heads"] / 1e9


def run_worker(spec: dict) -> dict:
    """Time fwd+bwd of one implementation at one length; returns the JSON record."""
    if spec["impl"] == "sgemm":
        return sgemm_worker(spec)
    import torch

    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    dtype = getattr(torch, spec["dtype"])
    shape = (spec["batch"], spec["heads"], spec["N"], spec["head_dim"])
    generator = torch.Generator(device=device).manual_seed(0)
    q, k, v = (
        torch.randn(shape, device=device, dtype=dtype, generator=generator).requires_grad_(True)
        for _ in range(3)
    )
    function = _make_function(spec["impl"], spec, torch)
    grad_out = None

    def step() -> tuple[float, float]:
        """(wall, process CPU) seconds of one fwd+bwd."""
        nonlocal grad_out
        for x in (q, k, v):
            x.grad = None
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        out = function(q, k, v)
        if grad_out is None:
            grad_out = torch.randn(out.shape, device=device, dtype=dtype, generator=generator)
        out.backward(grad_out)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - start_cpu

    for _ in range(spec["warmup"]):
        step()
    # The baseline is taken after warm-up so that one-off costs (libraries paged in, kernels
    # compiled) are not counted as the step's memory.
    for x in (q, k, v):
        x.grad = None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    else:
        _release_free_heap()
        baseline, _ = _cpu_resident_mib()
        _reset_cpu_peak()
    times = [step() for _ in range(spec["reps"])]
    if device.type == "cuda":
        peak_mib = (torch.cuda.max_memory_allocated() - baseline) / 2**20
    else:
        peak_mib = _cpu_resident_mib()[1] - baseline
    walls, cpus = zip(*times, strict=True)
    source = sys.modules.get("bigbird_genomics")
    return {
        "src": str(Path(source.__file__).parent) if source else None,
        "N": spec["N"],
        "impl": spec["impl"],
        "fb_ms": round(1000 * statistics.median(walls), 2),
        "peak_mib": round(peak_mib, 1),
        # Process CPU time: on a shared machine it excludes time spent waiting for a core.
        "fb_cpu_ms": round(1000 * statistics.median(cpus), 2),
        "reps_ms": [round(1000 * t, 2) for t in walls],
    }


# ---------------------------------------------------------------- driver


def skip_reason(impl: str, device: str, baseline_src: Path | None = None) -> str | None:
    """Why an implementation cannot run here (None if it can)."""
    if impl.startswith("flex") and device == "cpu":
        return "FlexAttention has no backward pass on CPU (torch raises NotImplementedError)"
    if impl == "triton" and device == "cpu":
        return "the Triton kernels need a CUDA GPU (on CPU only their interpreter runs, for tests)"
    if impl == "block_baseline" and baseline_src is None:
        return "needs --baseline-src"
    if impl == "transformers":
        try:
            import transformers  # noqa: F401
        except ImportError:
            return "transformers is not installed (pip install '.[bench]')"
    return None


def measure(spec: dict) -> dict | str:
    """Run one measurement in a fresh interpreter; the record, or the error text."""
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), WANDB_MODE="disabled")
    if spec.get("src"):
        env["PYTHONPATH"] = os.pathsep.join([spec["src"], env.get("PYTHONPATH", "")])
    process = subprocess.run(
        [sys.executable, "-P", __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if process.returncode != 0:
        tail = (process.stderr or process.stdout).strip().splitlines()[-3:]
        return f"exit {process.returncode}: " + " | ".join(tail)
    return json.loads(process.stdout.strip().splitlines()[-1])


def print_table(
    records: list[dict], ns: list[int], impls: list[str], sgemm: dict[str, float] | None
) -> None:
    """Time, peak memory, useful GFLOP/s and its share of sgemm, and ratios between impls."""
    by_key = {(r["N"], r["impl"]): r for r in records}
    others = [
        i
        for i in ("dense", "transformers", "block_baseline", "block_bf16", "block_bf16_flash")
        if i in impls
    ]
    header = (
        f"{'N':>7} {'impl':>14} {'fwd+bwd ms':>11} {'CPU ms':>9} {'peak MiB':>9} "
        f"{'GFLOP/s':>8} {'% sgemm':>8} {'GFLOP/s cpu':>11} {'% sgemm cpu':>11}"
        + "".join(f" {other + ' / block':>22}" for other in others)
    )
    print(header)
    print("-" * len(header))
    for n in ns:
        block = by_key.get((n, "block"))
        for impl in impls:
            record = by_key.get((n, impl))
            if record is None:
                continue
            share = share_cpu = ""
            if sgemm:
                share = f"{100 * record['gflops'] / sgemm['sgemm_gflops']:.0f}%"
                share_cpu = f"{100 * record['gflops_cpu'] / sgemm['sgemm_cpu_gflops']:.0f}%"
            line = (
                f"{n:>7} {impl:>14} {record['fb_ms']:>11.1f} {record['fb_cpu_ms']:>9.1f} "
                f"{record['peak_mib']:>9.1f} {record['gflops']:>8.1f} {share:>8} "
                f"{record['gflops_cpu']:>11.1f} {share_cpu:>11}"
            )
            for other in others:
                ratio = ""
                other_record = by_key.get((n, other))
                if block and other_record and impl == "block":
                    ratio = (
                        f"{other_record['fb_ms'] / block['fb_ms']:.2f}x / "
                        f"{other_record['fb_cpu_ms'] / block['fb_cpu_ms']:.2f}x cpu"
                    )
                line += f" {ratio:>22}"
            print(line)
    if len(ns) >= 2:
        low, high = min(ns), max(ns)
        print(f"\nScaling exponent from N={low} to N={high} (log ratio / log length ratio):")
        for impl in impls:
            a, b = by_key.get((low, impl)), by_key.get((high, impl))
            if a and b:
                parts = [
                    f"{label} {math.log(b[key] / a[key]) / math.log(high / low):.2f}"
                    for label, key in (
                        ("time", "fb_ms"),
                        ("CPU time", "fb_cpu_ms"),
                        ("memory", "peak_mib"),
                    )
                    if a[key] > 0 and b[key] > 0
                ]
                print(f"  {impl:>14}: {', '.join(parts)}")


def write_json(records: list[dict], path: Path, sgemm: list[dict]) -> None:
    """Write the records and the sgemm rates atomically (temp file + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = (
        "N", "impl", "src", "fb_ms", "peak_mib", "fb_cpu_ms", "gflop", "gflops", "gflops_cpu",
        "reps_ms",
    )  # fmt: skip
    keep = {
        "sgemm": sgemm,
        "records": [{key: r[key] for key in keys if key in r} for r in records],
    }
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as stream:
        json.dump(keep, stream, indent=1)
    os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; results are ordinary shared files
    os.replace(tmp_name, path)


def _sgemm(args: argparse.Namespace, dtype: str = "float32") -> dict | None:
    """The GEMM rate of `dtype` (float32: the reference of "% sgemm")."""
    spec = {"impl": "sgemm", "threads": args.threads, "dtype": dtype}
    result = measure(spec)
    if isinstance(result, str):
        print(f"sgemm: failed ({result})", flush=True)
        return None
    print(
        f"gemm 2048x2048 {dtype}, {args.threads} thread(s): {result['sgemm_gflops']} GFLOP/s "
        f"(by CPU time {result['sgemm_cpu_gflops']})",
        flush=True,
    )
    return {**result, "dtype": dtype}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return 0
    impls = list(dict.fromkeys(args.impls))
    print(
        f"device={args.device} dtype={args.dtype} B={args.batch} H={args.heads} "
        f"d={args.head_dim} threads={args.threads} block={BLOCK_SIZE} window={WINDOW_BLOCKS} "
        f"global={GLOBAL_BLOCKS} random={RANDOM_BLOCKS} warmup={args.warmup} reps={args.reps} "
        "(median)",
        flush=True,
    )
    sgemm = [rate for rate in [_sgemm(args)] if rate is not None] if args.device == "cpu" else []
    records = []
    for impl in impls:
        reason = skip_reason(impl, args.device, args.baseline_src)
        if reason:
            print(f"skip {impl}: {reason}", flush=True)
    for n in args.ns:
        for impl in impls:
            if skip_reason(impl, args.device, args.baseline_src):
                continue
            spec = {
                "N": n, "impl": impl, "device": args.device, "dtype": args.dtype,
                "heads": args.heads, "head_dim": args.head_dim, "batch": args.batch,
                "threads": args.threads, "warmup": args.warmup, "reps": args.reps,
            }  # fmt: skip
            if impl == "block_baseline":
                spec["src"] = str(args.baseline_src.resolve())
            if impl.startswith("block_bf16"):
                spec["dtype"] = "bfloat16"
            result = measure(spec)
            if isinstance(result, str):
                print(f"N={n} {impl}: failed ({result})", flush=True)
                continue
            result["gflop"] = round(useful_gflop(spec), 3)
            result["gflops"] = round(result["gflop"] / (result["fb_ms"] / 1000), 1)
            result["gflops_cpu"] = round(result["gflop"] / (result["fb_cpu_ms"] / 1000), 1)
            print(f"N={n} {impl}: {result['fb_ms']:.1f} ms {result['peak_mib']:.1f} MiB "
                  f"{result['gflops']:.1f} GFLOP/s (reps {result['reps_ms']}) "
                  f"{result['src'] or ''}",
                  flush=True)  # fmt: skip
            records.append(result)
    if args.device == "cpu":
        sgemm += [rate for rate in [_sgemm(args)] if rate is not None]
    bf16 = any(impl.startswith("block_bf16") for impl in impls)
    bf16_gemm = _sgemm(args, "bfloat16") if args.device == "cpu" and bf16 else None
    print()
    best = None
    if sgemm:
        best = {key: max(s[key] for s in sgemm) for key in ("sgemm_gflops", "sgemm_cpu_gflops")}
        # block_bf16's "% sgemm" is of the float32 rate too: the question is how much
        # of this CPU's ordinary float32 matrix rate the sparse work reaches; bf16's own is
        # printed above.
        print(f"sgemm before and after: {sgemm}; % sgemm uses the highest: {best}\n")
    print_table(records, args.ns, impls, best)
    if args.json:
        write_json(records, args.json, sgemm + ([bf16_gemm] if bf16_gemm else []))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
