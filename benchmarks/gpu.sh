#!/usr/bin/env bash
# The CUDA check of softmetrics in one call: the test suite (device-aware tests with
# `--device cuda`) and every benchmark on the GPU, all results in one folder.
#
#   benchmarks/gpu.sh [OUT_DIR]          # needs a CUDA GPU; OUT_DIR defaults to $OUT
#   benchmarks/gpu.sh --cpu [OUT_DIR]    # the same command lines on the CPU, tiny settings
#   benchmarks/gpu.sh --dry-run          # print the command lines and exit
#
# Steps (each with its own time limit; a failing step does not stop the others, but makes
# the script exit non-zero at the end):
#   tests        the non-slow suite, one pytest process per test file, several at once;
#                files that mention `device` or `cuda` run with `--device cuda`
#                (in --cpu mode: collected only, since CI runs the suite on the CPU)
#   speed        benchmarks/speed.py: classification losses vs cross-entropy
#   bleu         benchmarks/bleu.py: BLEU throughput (CPU loops and the GPU batch)
#   contrastive  benchmarks/contrastive.py: InfoNCE / NT-Xent time and peak memory, and the
#                peak memory of InfoNCE at N = 262144 and 1048576, D = 512 (the 8 GB target)
#   ranking      benchmarks/ranking.py: soft AP time and peak memory (CPU and CUDA)
#
# Output: OUT_DIR/environment.txt (GPU, driver, versions), OUT_DIR/summary.md (one row per
# step: exit status, seconds), OUT_DIR/logs/*.log, OUT_DIR/tests/*.xml (JUnit) and one
# folder per benchmark with its JSON, Markdown table and plot. About 8-10 minutes on one
# H100; the sizes are chosen for that (see the command lines below).
set -uo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }

MODE=gpu
OUT_DIR=${OUT:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu ;;
    --dry-run) MODE=dry ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) OUT_DIR=$1 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
PYTHON=${PYTHON:-$(command -v python || command -v python3)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
JOBS=${GPU_SH_JOBS:-$(( $(nproc) / 2 > 8 ? 8 : ($(nproc) / 2 < 1 ? 1 : $(nproc) / 2) ))}

if [ "$MODE" = dry ]; then
  OUT_DIR=${OUT_DIR:-OUT_DIR}
elif [ -z "$OUT_DIR" ]; then
  echo "gpu.sh: no output folder: give it as the argument or set \$OUT" >&2
  exit 2
fi

# ---------------------------------------------------------------- the command lines
if [ "$MODE" = cpu ]; then
  DEVICE=cpu
  PYTEST_EXTRA=(--collect-only)
  SPEED=(benchmarks/speed.py --smoke --device cpu --out "$OUT_DIR/speed")
  BLEU=(benchmarks/bleu.py --smoke --out "$OUT_DIR/bleu")
  CONTRASTIVE=(benchmarks/contrastive.py --smoke --device cpu --skip-mi
               --scale-sizes 8192 --scale-d 16 --out "$OUT_DIR/contrastive")
  RANKING=(benchmarks/ranking.py --smoke --out "$OUT_DIR/ranking")
else
  DEVICE=cuda
  PYTEST_EXTRA=()
  SPEED=(benchmarks/speed.py --device cuda --min-run-time 0.2 --out "$OUT_DIR/speed")
  BLEU=(benchmarks/bleu.py --batch 4096 --lengths 32 128 --loop-sentences 256
        --gpu-batches 4096 16384 65536 --min-run-time 0.5 --out "$OUT_DIR/bleu")
  CONTRASTIVE=(benchmarks/contrastive.py --device cuda --sizes 4096 16384 65536
               --ntxent-sizes 1024 4096 --min-run-time 0.5 --skip-mi
               --scale-sizes 262144 1048576 --scale-d 512 --scale-methods softmetrics_auto
               --out "$OUT_DIR/contrastive")
  RANKING=(benchmarks/ranking.py --binary-sizes 1000 4000 16000 --retrieval-sizes 64 128 256
           --min-run-time 0.3 --max-gib 4 --out "$OUT_DIR/ranking")
fi
# files whose tests can run on the device under test (`device` fixture or CUDA checks)
mapfile -t TEST_FILES < <(ls tests/test_*.py)
mapfile -t DEVICE_FILES < <(grep -lwE 'device|cuda' "${TEST_FILES[@]}")
PYTEST=(-m pytest -q -p no:cacheprovider -m "not slow and not browser")

pytest_line() {  # the pytest arguments for one test file
  local file=$1 name
  name=$(basename "$file" .py)
  local args=("${PYTEST[@]}" "$file" --junitxml="$OUT_DIR/tests/$name.xml")
  if printf '%s\n' "${DEVICE_FILES[@]}" | grep -qx "$file"; then
    args+=(--device "$DEVICE")
  fi
  printf '%s\n' "${args[@]}" "${PYTEST_EXTRA[@]}"
}

if [ "$MODE" = dry ]; then
  for f in "${TEST_FILES[@]}"; do
    mapfile -t a < <(pytest_line "$f"); echo "python ${a[*]@Q}"
  done
  for cmd in SPEED BLEU CONTRASTIVE RANKING; do
    declare -n c=$cmd; echo "python ${c[*]@Q}"; unset -n c
  done
  exit 0
fi

# ---------------------------------------------------------------- fail fast without a GPU
if [ "$MODE" = gpu ]; then
  if ! found=$("$PYTHON" -c 'import sys, torch
print("torch", torch.__version__, "CUDA build:", torch.version.cuda)
sys.exit(0 if torch.cuda.is_available() else 1)' 2>&1); then
    echo "gpu.sh: no CUDA GPU is visible to torch ($found); nothing was run." \
      "Use --cpu to check the command lines on the CPU." >&2
    exit 3
  fi
fi

mkdir -p "$OUT_DIR/logs" "$OUT_DIR/tests" || exit 2
START=$(date +%s)

# ---------------------------------------------------------------- machine and versions
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "mode: $MODE"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  "$PYTHON" - <<'EOF'
import os, platform, torch
print("python:", platform.python_version(), "|", platform.platform())
print("cpu cores:", os.cpu_count())
print("torch:", torch.__version__, "| CUDA build:", torch.version.cuda,
      "| cuDNN:", torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("GPU:", torch.cuda.get_device_name(0), "| memory: %.1f GiB" % (p.total_memory / 2**30),
          "| compute capability: %d.%d" % (p.major, p.minor), "| count:", torch.cuda.device_count())
else:
    print("GPU: none")
import importlib.util
for name in ("softmetrics", "numpy", "sacrebleu", "nltk", "torchmetrics", "info_nce",
             "pytorch_metric_learning", "sklearn", "hypothesis", "pytest"):
    if importlib.util.find_spec(name) is None:
        print(f"{name}: not installed")
    else:
        mod = __import__(name)
        print(f"{name}: {getattr(mod, '__version__', 'installed')}")
EOF
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit \
      --format=csv 2>&1
  fi
} > "$OUT_DIR/environment.txt" 2>&1
cat "$OUT_DIR/environment.txt"

printf '| step | exit status | seconds |\n|---|---:|---:|\n' > "$OUT_DIR/summary.md"
FAILED=0

step() {  # step NAME TIMEOUT_S ARGS... : run one step, log it, record its status
  local name=$1 limit=$2 t0 rc
  shift 2
  echo "=== $name: $PYTHON $*"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$PYTHON" "$@" > "$OUT_DIR/logs/$name.log" 2>&1
  rc=$?
  printf '| %s | %s | %s |\n' "$name" "$rc$([ "$rc" -eq 124 ] && echo ' (time limit)')$(
    [ "$rc" -eq 5 ] && [[ $name == tests_* ]] && echo ' (no test selected)')" \
    "$(( $(date +%s) - t0 ))" >> "$OUT_DIR/summary.md"
  tail -n 5 "$OUT_DIR/logs/$name.log" | sed "s/^/  [$name] /"
  return "$rc"
}

# ---------------------------------------------------------------- tests, in parallel
echo "=== tests: ${#TEST_FILES[@]} files, $JOBS at a time; on $DEVICE: ${DEVICE_FILES[*]}"
pids=()
for f in "${TEST_FILES[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  mapfile -t a < <(pytest_line "$f")
  # exit status 5: every test of the file deselected (e.g. browser tests), not a failure
  ( step "tests_$(basename "$f" .py)" 360 "${a[@]}" >/dev/null; rc=$?
    exit "$([ "$rc" -eq 5 ] && echo 0 || echo "$rc")" ) &
  pids+=($!)
done
for p in "${pids[@]}"; do
  wait "$p" || FAILED=1
done
grep '^| tests_' "$OUT_DIR/summary.md"

# ---------------------------------------------------------------- benchmarks, one at a time
step speed 120 "${SPEED[@]}" || FAILED=1
step bleu 120 "${BLEU[@]}" || FAILED=1
step contrastive 330 "${CONTRASTIVE[@]}" || FAILED=1
step ranking 150 "${RANKING[@]}" || FAILED=1

echo
cat "$OUT_DIR/summary.md"
echo "total: $(( $(date +%s) - START )) s; results in $OUT_DIR"
if [ "$FAILED" -ne 0 ]; then
  echo "gpu.sh: some steps failed; see $OUT_DIR/logs/" >&2
fi
exit "$FAILED"
