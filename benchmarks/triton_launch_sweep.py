"""Time the `triton` backend's kernels under several launch settings (warps, pipeline stages).

One process, CUDA only: forward and forward+backward of one attention call (bf16, B=1, 12
heads, d=64, block 64, window 3, global 2, random 3), median of `--reps` after warm-up, for
each setting; prints a table and writes JSON, so the default in triton_backend.LAUNCH can be
chosen from a measurement.

    python benchmarks/triton_launch_sweep.py --n 65536 --json sweep.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

SETTINGS = [(4, 2), (8, 2), (4, 3), (8, 3), (4, 1), (2, 2)]


def timed(function, reps: int) -> float:  # noqa: ANN001
    """Median milliseconds of `function()` over `reps` runs, CUDA events around each."""
    import torch

    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=65536)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import torch

    from bigbird_genomics.attention import SparsityConfig, bigbird_attention, triton_backend

    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    config = SparsityConfig(backend="triton")
    shape = (1, args.heads, args.n, 64)
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, requires_grad=True)
               for _ in range(3))  # fmt: skip
    grad = torch.randn(shape, device="cuda", dtype=torch.bfloat16)

    def forward() -> None:
        with torch.no_grad():
            bigbird_attention(q, k, v, config)

    def forward_backward() -> None:
        bigbird_attention(q, k, v, config).backward(grad)

    rows = []
    for warps, stages in SETTINGS:
        triton_backend.LAUNCH.update(num_warps=warps, num_stages=stages)
        try:
            for _ in range(3):
                forward_backward()
            torch.cuda.synchronize()
            row = {
                "num_warps": warps,
                "num_stages": stages,
                "fwd_ms": timed(forward, args.reps),
                "fb_ms": timed(forward_backward, args.reps),
            }
        except Exception as error:  # noqa: BLE001 - a setting the GPU cannot run is a result too
            row = {"num_warps": warps, "num_stages": stages, "error": repr(error)[:300]}
        rows.append({"N": args.n, **row})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'warps':>5} {'stages':>6} {'fwd ms':>8} {'fwd+bwd ms':>11}")
    for row in rows:
        if "error" in row:
            print(f"{row['num_warps']:>5} {row['num_stages']:>6}  failed: {row['error'][:60]}")
        else:
            print(f"{row['num_warps']:>5} {row['num_stages']:>6} {row['fwd_ms']:>8.2f} "
                  f"{row['fb_ms']:>11.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
