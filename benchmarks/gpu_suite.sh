#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one call, most valuable first; each part has its own time
# limit so that a hang in one still leaves the others' results (GPU time is scarce and rented).
#
#   bash benchmarks/gpu_suite.sh OUT_DIR [ACCURACY_DIR]
#
# 1. accuracy training runs on real data (background; needs ACCURACY_DIR prepared on any machine
#    with `python -m benchmarks.accuracy --out ACCURACY_DIR --baseline-only`), while
# 2. the CUDA correctness tests run (compiled FlexAttention vs dense, outputs and gradients);
# 3. benchmarks/attention.py, bf16, 12 heads, N = 65536 and 16384 (alone on the GPU);
# 4. benchmarks/train_throughput.py, BigBird-base size: `ours` (auto = block) and `ours` with
#    whichever flex layout won step 3, against transformers' BigBird and a dense-SDPA BERT.
# Works from a source checkout: src/ goes on PYTHONPATH, nothing is pip-installed (hydra-core,
# omegaconf, antlr4-python3-runtime, biopython and pyfaidx must be importable for step 1).
# Seen on an H100 (2026-11-27), before flex moved to 128-token tiles: 349 s in all.
set -u
OUT=${1:?usage: gpu_suite.sh OUT_DIR [ACCURACY_DIR]}
ACCURACY_DIR=${2:-}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 WANDB_MODE=disabled
log() { echo "[$(date +%T)] $*"; }

log "device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"

ACCURACY_PID=
if [ -n "$ACCURACY_DIR" ] && [ -d "$ACCURACY_DIR/data" ]; then
  log "accuracy: 3 tasks x 3 seeds at once, model=small, trainer=gpu (background)"
  rm -f "$ACCURACY_DIR"/accuracy.json "$ACCURACY_DIR"/accuracy.md  # no stale table from --baseline-only
  # backend=block: the same attention as flex, without compiling 9 processes' kernels.
  timeout 200 python3 -m benchmarks.accuracy --out "$ACCURACY_DIR" --jobs 9 --model small \
    --no-baselines --max-minutes 2 --max-epochs 15 --override trainer=gpu attention.backend=block \
    > "$OUT/accuracy.log" 2>&1 &
  ACCURACY_PID=$!
fi

log "CUDA tests"
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_attention_backends.py -k cuda \
  > "$OUT/pytest_cuda.log" 2>&1
log "CUDA tests exit $?: $(tail -n 1 "$OUT/pytest_cuda.log")"
if [ -n "$ACCURACY_PID" ]; then
  wait "$ACCURACY_PID"
  status=$?
  log "accuracy exit $status"
  [ "$status" -eq 0 ] && cp "$ACCURACY_DIR"/accuracy.json "$ACCURACY_DIR"/accuracy.md "$OUT"/
  tail -n 8 "$OUT/accuracy.log"
fi

log "attention benchmark"
rm -f "$OUT/attention.json"  # the layout choice below must not read an older run's file
timeout 190 python3 benchmarks/attention.py --device cuda --dtype bfloat16 --heads 12 \
  --ns 65536 16384 --impls flex_balanced flex_plain block dense transformers \
  --warmup 3 --reps 10 --json "$OUT/attention.json" 2>&1 | tee "$OUT/attention.log" | tail -n 22

# The faster flex layout at 65536 tokens trains the model in step 4.
MODEL=$(python3 - "$OUT/attention.json" <<'EOF'
import json, sys
try:
    rows = {r["impl"]: r["fb_ms"] for r in json.load(open(sys.argv[1])) if r["N"] == 65536}
except OSError:
    rows = {}
plain, balanced = rows.get("flex_plain", 1e9), rows.get("flex_balanced", 1e9)
print("ours_balanced" if balanced < plain else "ours_plain")
EOF
)
log "training throughput: ours (block) and $MODEL"
timeout 180 python3 benchmarks/train_throughput.py --device cuda --dtype bfloat16 --size base \
  --ns 16384 65536 --models ours "$MODEL" hf_bert_sdpa hf_bigbird --warmup 1 --steps 3 \
  --json "$OUT/train.json" > "$OUT/train.log" 2>&1
log "training throughput exit $?"
tail -n 8 "$OUT/train.log"
log "done"
