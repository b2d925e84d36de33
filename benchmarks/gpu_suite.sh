#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one call, most valuable first. Each part has its own time
# limit, cut to what is left of DEADLINE seconds (default 560, under a 600 s command limit), so a
# hang in one part still leaves the others' results (GPU time is scarce and rented).
#
#   bash benchmarks/gpu_suite.sh OUT_DIR [ACCURACY_DIR]
#
# 1. the CUDA correctness tests: compiled Triton kernels, block and FlexAttention against the
#    dense reference (outputs and gradients, fp32 and bf16), and Triton's determinism;
# 2. benchmarks/attention.py, bf16, 12 heads, N = 65536 and 16384;
# 3. benchmarks/train_throughput.py, BigBird-base size, 16384 tokens: `ours` with the Triton
#    kernels, eager and under torch.compile, against transformers' BigBird and a dense-SDPA
#    BERT; then 65536 tokens;
# 4. a sweep of the Triton launch settings (warps, pipeline stages) at 65536 tokens;
# 5. accuracy training runs on real data, 3 tasks x 3 seeds at once, with the time left (needs
#    ACCURACY_DIR prepared on any machine with
#    `python -m benchmarks.accuracy --out ACCURACY_DIR --baseline-only`).
# Works from a source checkout: src/ goes on PYTHONPATH, nothing is pip-installed (step 5 needs
# hydra-core, omegaconf, antlr4-python3-runtime, biopython, pyfaidx, pytorch-lightning,
# torchmetrics and matplotlib importable).
# Seen on an H100 (2026-11-28): steps 1-4 took ~330 s; 9 accuracy runs of 2 training minutes
# each did not finish in 200 s when sharing the GPU.
set -u
OUT=${1:?usage: gpu_suite.sh OUT_DIR [ACCURACY_DIR]}
ACCURACY_DIR=${2:-}
DEADLINE=${DEADLINE:-560}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 WANDB_MODE=disabled
log() { echo "[$(date +%T) +${SECONDS}s] $*"; }
# limit WANTED: the seconds a part may take, at most what is left before DEADLINE (0: skip it)
limit() {
  local left=$((DEADLINE - SECONDS))
  if [ "$left" -lt 20 ]; then echo 0; elif [ "$left" -lt "$1" ]; then echo "$left"; else echo "$1"; fi
}
run_part() {  # run_part NAME WANTED_SECONDS COMMAND...: one part, logged, cut to the deadline
  local name=$1 seconds
  seconds=$(limit "$2")
  shift 2
  if [ "$seconds" -eq 0 ]; then log "$name: skipped, no time left"; return; fi
  log "$name (limit ${seconds}s)"
  timeout "$seconds" "$@" > "$OUT/$name.log" 2>&1
  log "$name exit $?"
  tail -n 14 "$OUT/$name.log"
}

log "device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"

run_part pytest_cuda 150 python3 -m pytest -q -p no:cacheprovider \
  tests/test_attention_backends.py tests/test_attention_triton.py -k "cuda or compile"
grep -E "^(FAILED|ERROR)" "$OUT/pytest_cuda.log" | head -n 12

run_part attention 150 python3 benchmarks/attention.py --device cuda --dtype bfloat16 --heads 12 \
  --ns 65536 16384 --impls triton block dense transformers flex_balanced \
  --warmup 3 --reps 10 --json "$OUT/attention.json"

run_part train_16k 150 python3 benchmarks/train_throughput.py --device cuda --dtype bfloat16 \
  --size base --ns 16384 --models ours_triton ours_triton_compiled hf_bert_sdpa hf_bigbird \
  --warmup 2 --steps 5 --json "$OUT/train_16k.json"

run_part train_64k 90 python3 benchmarks/train_throughput.py --device cuda --dtype bfloat16 \
  --size base --ns 65536 --models ours_triton ours_triton_compiled hf_bert_sdpa \
  --warmup 1 --steps 3 --json "$OUT/train_64k.json"

run_part triton_sweep 45 python3 benchmarks/triton_launch_sweep.py --json "$OUT/triton_sweep.json"

if [ -n "$ACCURACY_DIR" ] && [ -d "$ACCURACY_DIR/data" ]; then
  rm -f "$ACCURACY_DIR"/accuracy.json "$ACCURACY_DIR"/accuracy.md  # no stale table from --baseline-only
  # backend=block: the same attention, without compiling kernels in 9 processes at once.
  run_part accuracy 400 python3 -m benchmarks.accuracy --out "$ACCURACY_DIR" --jobs 9 \
    --model small --no-baselines --max-minutes 3 --max-epochs 30 \
    --override trainer=gpu attention.backend=block
  cp "$ACCURACY_DIR"/accuracy.json "$ACCURACY_DIR"/accuracy.md "$OUT"/ 2>/dev/null
fi
log "done"
