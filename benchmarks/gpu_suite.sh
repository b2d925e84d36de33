#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one call of at most ~9 minutes, most valuable first; each
# part has its own time limit, so a hang in one still leaves the others' results (GPU time is
# scarce and rented).
#
#   bash benchmarks/gpu_suite.sh OUT_DIR [ACCURACY_DIR]
#
# 1. accuracy training runs on real data (background; needs ACCURACY_DIR prepared on any machine
#    with `python -m benchmarks.accuracy --out ACCURACY_DIR --baseline-only`), while
# 2. the CUDA correctness tests run: compiled Triton kernels, block, then FlexAttention, each
#    against the dense reference (outputs and gradients, fp32 and bf16);
# 3. benchmarks/attention.py, bf16, 12 heads, N = 65536 and 16384 (alone on the GPU), then the
#    two FlexAttention layouts;
# 4. benchmarks/train_throughput.py, BigBird-base size: `ours` with the Triton kernels and with
#    `block`, against transformers' BigBird and a dense-SDPA BERT;
# 5. a small sweep of the Triton launch settings (warps, pipeline stages) at 65536 tokens.
# Works from a source checkout: src/ goes on PYTHONPATH, nothing is pip-installed (hydra-core,
# omegaconf, antlr4-python3-runtime, biopython and pyfaidx must be importable for step 1).
set -u
OUT=${1:?usage: gpu_suite.sh OUT_DIR [ACCURACY_DIR]}
ACCURACY_DIR=${2:-}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 WANDB_MODE=disabled
log() { echo "[$(date +%T) +${SECONDS}s] $*"; }

log "device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"

ACCURACY_PID=
if [ -n "$ACCURACY_DIR" ] && [ -d "$ACCURACY_DIR/data" ]; then
  log "accuracy: 3 tasks x 3 seeds at once, model=small, trainer=gpu (background)"
  rm -f "$ACCURACY_DIR"/accuracy.json "$ACCURACY_DIR"/accuracy.md  # no stale table from --baseline-only
  # backend=block: the same attention, without compiling kernels in 9 processes at once.
  timeout 200 python3 -m benchmarks.accuracy --out "$ACCURACY_DIR" --jobs 9 --model small \
    --no-baselines --max-minutes 2 --max-epochs 30 --override trainer=gpu attention.backend=block \
    > "$OUT/accuracy.log" 2>&1 &
  ACCURACY_PID=$!
fi

log "CUDA tests: triton, block, auto"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_attention_backends.py \
  tests/test_attention_triton.py -k "cuda and not flex" > "$OUT/pytest_cuda.log" 2>&1
log "CUDA tests exit $?: $(tail -n 1 "$OUT/pytest_cuda.log")"
grep -E "^(FAILED|ERROR)" "$OUT/pytest_cuda.log" | head -n 12
if [ -n "$ACCURACY_PID" ]; then
  wait "$ACCURACY_PID"
  status=$?
  log "accuracy exit $status"
  [ "$status" -eq 0 ] && cp "$ACCURACY_DIR"/accuracy.json "$ACCURACY_DIR"/accuracy.md "$OUT"/
  tail -n 6 "$OUT/accuracy.log"
fi

log "attention benchmark: triton, block, dense, transformers"
timeout 120 python3 benchmarks/attention.py --device cuda --dtype bfloat16 --heads 12 \
  --ns 65536 16384 --impls triton block dense transformers \
  --warmup 3 --reps 10 --json "$OUT/attention.json" > "$OUT/attention.log" 2>&1
log "attention exit $?"
tail -n 12 "$OUT/attention.log"

log "training throughput, BigBird-base"
timeout 170 python3 benchmarks/train_throughput.py --device cuda --dtype bfloat16 --size base \
  --ns 16384 65536 --models ours_triton ours hf_bert_sdpa hf_bigbird --warmup 1 --steps 3 \
  --json "$OUT/train.json" > "$OUT/train.log" 2>&1
log "training throughput exit $?"
tail -n 12 "$OUT/train.log"

log "triton launch settings at 65536 tokens"
timeout 45 python3 benchmarks/triton_launch_sweep.py --json "$OUT/triton_sweep.json" \
  > "$OUT/triton_sweep.log" 2>&1
log "sweep exit $?"
cat "$OUT/triton_sweep.log" | tail -n 8

log "attention benchmark: FlexAttention layouts (128-token tiles)"
timeout 100 python3 benchmarks/attention.py --device cuda --dtype bfloat16 --heads 12 \
  --ns 65536 16384 --impls flex_balanced flex_plain triton \
  --warmup 3 --reps 10 --json "$OUT/attention_flex.json" > "$OUT/attention_flex.log" 2>&1
log "flex exit $?"
tail -n 10 "$OUT/attention_flex.log"

log "CUDA tests: flex"
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_attention_backends.py \
  -k "cuda and flex" > "$OUT/pytest_cuda_flex.log" 2>&1
log "flex tests exit $?: $(tail -n 1 "$OUT/pytest_cuda_flex.log")"
log "done"
