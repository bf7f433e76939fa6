#!/usr/bin/env bash
# The CUDA check of softmetrics in one call, sized for a 15-minute GPU window (a machine
# start of one to two minutes, this script, and time to rerun one failed step).
#
#   benchmarks/gpu.sh [OUT_DIR]          # needs a CUDA GPU; OUT_DIR defaults to $OUT
#   benchmarks/gpu.sh --cpu [OUT_DIR]    # the same command lines on the CPU, tiny settings
#   benchmarks/gpu.sh --dry-run          # print the steps, their limits and command lines
#                                        # (with --cpu: those of the CPU mode)
#   benchmarks/gpu.sh --only bleu,ranking [OUT_DIR]   # these steps only (a rerun)
#
# Steps, in order of value. Each has its own time limit; a failing step does not stop the
# others, but makes the script exit non-zero at the end. The GPU times are ESTIMATES,
# reasoned from the sizes and kernel counts (one H200, 16 cores): no run on a GPU has
# been recorded yet.
#
#   step         limit  estimate  what
#   environment   20 s     5 s    GPU, driver, versions (exit 3 at once unless it confirms
#                                 a CUDA GPU)
#   cuda_sync     40 s    15 s    tests/test_cuda_sync.py --device cuda: no host
#                                 synchronisation in forward and backward
#   tests        150 s    75 s    the non-slow tests that take the `device` fixture, with
#                                 --device cuda, their node ids dealt round-robin to
#                                 GPU_SH_JOBS processes (default: half the cores, <= 8);
#                                 beside them `compile`: torch.compile of a classification
#                                 loss, of tiled InfoNCE and of tiled soft AP against eager
#                                 mode (value and gradient) and float16/bfloat16 autocast of the
#                                 classification losses and InfoNCE (about 60 s, mostly
#                                 Triton compilation)
#   speed         45 s    30 s    classification losses vs F.cross_entropy at (65536, 1000),
#                                 (4096, 1000), (65536, 10), (4096, 10): 24 rows (25 at
#                                 (4096, 10), with the pairwise AUROC) x 3 rounds x 3 timings
#                                 of 20 calls, a few milliseconds per call at most; a row
#                                 whose one call is estimated above 0.1 s is not run (smp's
#                                 Lovász-softmax at C = 1000: a Python loop over the classes)
#   bleu          55 s    35 s    bleu_score on the GPU: equality with sacrebleu on 256
#                                 sentences, then B = 16384, 4096, 65536 at length 32, then
#                                 128; afterwards the CPU loops (sacrebleu, NLTK,
#                                 torchmetrics) and softmetrics on the CPU
#   contrastive  110 s    60 s    InfoNCE with the tiles the library chooses on CUDA against
#                                 the naive loss (N x N logits + F.cross_entropy) at N =
#                                 16384 and 65536, D = 512 (about 4 x 4.4 TFLOP per step at
#                                 65536 in float32); peak memory of the automatic tiles at
#                                 N = 2^18 and 2^20, D = 512, float32 and bfloat16
#                                 embeddings (one step each, TF32 products: 4.5 PFLOP at 2^20)
#                                 and SigLIP's sigmoid loss, tiled against naive, at
#                                 N = 16384 and 65536, D = 512
#   ranking       60 s    40 s    soft AP and AUROC time and memory, CUDA then CPU
#                                 (binary, retrieval, multiclass, multilabel; no
#                                 tile-size part); on CUDA also with the positives
#                                 listed, at a synchronisation per pass
#   compiled      90 s    70 s    torch.compile of SoftF1Loss, SoftMCCLoss, SoftAccuracyLoss
#                                 and F.cross_entropy (modes default, then
#                                 reduce-overhead: CUDA graphs) against eager cross-entropy
#                                 at (4096, 10) and (65536, 10), where eager mode is bound
#                                 by kernel launches; each row compiles anew (10-25 s)
#   total        570 s   330 s    (the total of the limits is the most the script can take)
#
# Output: only a few files in OUT_DIR: gpu_results.tar.gz (everything, below),
# summary.md (each step's exit status, seconds, limit and estimate; the failures) and
# environment.txt. The results are written to a scratch folder (GPU_SH_SCRATCH, default a
# new temporary folder) and packed again after each step and every 20 seconds
# (GPU_SH_PACK_S), so a run that is stopped still leaves its latest figures. The archive
# holds gpu_results/ with
# summary.md, environment.txt, logs/<step>.log, tests/<step>.xml (JUnit) and speed/,
# bleu/, contrastive/, ranking/, compiled/: each benchmark's JSON and Markdown table,
# rewritten by the benchmark after every row.
set -uo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

MODE=gpu
DRY=0
ONLY=
OUT_DIR=${OUT:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu ;;
    --dry-run) DRY=1 ;;
    --only) ONLY=",${2:-},"; shift ;;
    --only=*) ONLY=",${1#--only=}," ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) OUT_DIR=$1 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
NPROC=$(nproc 2>/dev/null || echo 2)
JOBS=${GPU_SH_JOBS:-$(( NPROC / 2 > 8 ? 8 : (NPROC / 2 < 1 ? 1 : NPROC / 2) ))}

# ---------------------------------------------------------------- steps and their limits
BENCHMARKS=(speed bleu contrastive ranking compiled)
STEPS=(environment cuda_sync tests "${BENCHMARKS[@]}")
declare -A LIMIT=([environment]=20 [cuda_sync]=40 [tests]=150 [speed]=45 [bleu]=55
                  [contrastive]=110 [ranking]=60 [compiled]=90)
declare -A ESTIMATE=([environment]=5 [cuda_sync]=15 [tests]=75 [speed]=30 [bleu]=35
                     [contrastive]=60 [ranking]=40 [compiled]=70)
COLLECT_LIMIT=45  # the collection of the test node ids, within the tests step
wanted() { [ -z "$ONLY" ] || [ "$1" = environment ] || [[ $ONLY == *",$1,"* ]]; }
for s in ${ONLY//,/ }; do
  if [ -z "${LIMIT[$s]:-}" ]; then
    echo "gpu.sh: --only: unknown step $s (steps: ${STEPS[*]})" >&2
    exit 2
  fi
done
# --cpu on a small or busy machine: every limit times this factor (the dry run and the
# window check use the limits as written)
FACTOR=${GPU_SH_LIMIT_FACTOR:-$([ "$MODE" = cpu ] && echo 3 || echo 1)}

if [ "$DRY" = 1 ]; then
  RES=RESULTS
elif [ -z "$OUT_DIR" ]; then
  echo "gpu.sh: no output folder: give it as the argument or set \$OUT" >&2
  exit 2
else
  if [ -n "${GPU_SH_SCRATCH:-}" ]; then
    SCRATCH=$GPU_SH_SCRATCH
  else
    SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/gpu_sh.XXXXXX") || exit 2
  fi
  RES=$SCRATCH/gpu_results
  rm -rf "$RES"
  mkdir -p "$RES/logs" "$RES/tests" || exit 2
fi

# ---------------------------------------------------------------- the command lines
# The budgets (--budget-s) stop each benchmark cleanly before its next row, some
# seconds before the step's limit, which stops it wherever it is.
if [ "$MODE" = cpu ]; then
  DEVICE=cpu
  PYTEST_EXTRA=(--collect-only)
  SPEED=(benchmarks/speed.py --device cpu --sizes 256x10 256x100 --runs 2 --rounds 1
         --max-call-s 0.1 --budget-s 35 --out "$RES/speed")
  BLEU=(benchmarks/bleu.py --device cpu --gpu-batches 64 32 --gpu-lengths 8 16
        --check-sentences 16 --batch 64 --lengths 8 --loop-sentences 16 --min-run-time 0.01
        --budget-s 45 --out "$RES/bleu")
  CONTRASTIVE=(benchmarks/contrastive.py --device cpu --in-process
               --methods naive softmetrics_auto --sizes 128 256 --d 16 --ntxent-sizes
               --skip-mi --min-run-time 0.01 --scale-sizes 4096 --scale-d 16
               --scale-methods softmetrics_auto --scale-dtypes float32 bfloat16 --scale-tf32
               --siglip-sizes 128 --siglip-d 16 --budget-s 95 --out "$RES/contrastive")
  RANKING=(benchmarks/ranking.py --devices cpu --binary-sizes 200 --cuda-binary-sizes 1000
           --retrieval-sizes 16 --cuda-retrieval-sizes 32 --multiclass-sizes 100x10
           --multilabel-sizes 100x5 --no-tiles --no-compiled --min-run-time 0.01 --max-gib 4 --memory-jobs 8 --budget-s 45 --out "$RES/ranking")
  COMPILED=(benchmarks/compiled.py --device cpu --sizes 256x10 --losses SoftF1Loss
            --runs 2 --rounds 1 --budget-s 50 --out "$RES/compiled")
else
  DEVICE=cuda
  PYTEST_EXTRA=()
  SPEED=(benchmarks/speed.py --device cuda --sizes 65536x1000 4096x1000 65536x10 4096x10
         --runs 20 --rounds 3 --max-call-s 0.1 --budget-s 35 --out "$RES/speed")
  BLEU=(benchmarks/bleu.py --device cuda --gpu-batches 16384 4096 65536 --gpu-lengths 32 128
        --check-sentences 256 --batch 4096 --lengths 32 128 --loop-sentences 256
        --min-run-time 0.3 --budget-s 45 --out "$RES/bleu")
  CONTRASTIVE=(benchmarks/contrastive.py --device cuda --in-process
               --methods naive softmetrics_auto --sizes 16384 65536 --d 512 --ntxent-sizes
               --skip-mi --min-run-time 0.3 --scale-sizes 262144 1048576 --scale-d 512
               --scale-methods softmetrics_auto --scale-dtypes float32 bfloat16 --scale-tf32
               --siglip-sizes 16384 65536 --budget-s 95 --out "$RES/contrastive")
  RANKING=(benchmarks/ranking.py --devices cuda cpu --binary-sizes 4000 16000
           --cuda-binary-sizes 100000 --retrieval-sizes 128 256 --cuda-retrieval-sizes 512
           --multiclass-sizes 4000x10 1000x100 --multilabel-sizes 4000x20 --no-tiles
           --no-compiled --min-run-time 0.2
           --max-gib 4 --memory-jobs 8 --budget-s 45 --out "$RES/ranking")
  # a row may start just before the budget ends and then compile for up to half a minute
  COMPILED=(benchmarks/compiled.py --device cuda --sizes 4096x10 65536x10
            --losses SoftF1Loss SoftMCCLoss SoftAccuracyLoss F.cross_entropy
            --modes default reduce-overhead --runs 20 --rounds 3 --budget-s 50
            --out "$RES/compiled")
fi

PYTEST=(-m pytest -p no:cacheprovider)
SELECT=(-m "not slow and not browser")
CUDA_SYNC=("${PYTEST[@]}" "${SELECT[@]}" tests/test_cuda_sync.py --device "$DEVICE"
           --junitxml="$RES/tests/cuda_sync.xml" "${PYTEST_EXTRA[@]}")
# the files with device-aware tests (the `device` fixture as an argument), and of them
# only the tests that take it (`--device-tests-only`): the others run on the CPU whatever
# the device, and CI runs them
mapfile -t DEVICE_FILES < <(grep -lE '[(, ]device[,)]' tests/test_*.py |
                            grep -vxE 'tests/test_(cuda_sync|gpu_script)\.py')
COLLECT=("${PYTEST[@]}" "${SELECT[@]}" --collect-only --device-tests-only "${DEVICE_FILES[@]}"
         --device "$DEVICE")
shard_line() {  # shard_line K NODE_IDS... : the pytest arguments of shard K
  local k=$1
  shift
  printf '%s\n' "${PYTEST[@]}" "${SELECT[@]}" --device "$DEVICE" \
    --junitxml="$RES/tests/shard_$k.xml" "${PYTEST_EXTRA[@]}" "$@"
}
COMPILE=("${PYTEST[@]}" -m "slow or not slow" tests/test_gpu_script.py
         -k "compiled or autocast" --device "$DEVICE" --junitxml="$RES/tests/compile.xml"
         "${PYTEST_EXTRA[@]}")

TOTAL_LIMIT=0
for s in "${STEPS[@]}"; do
  wanted "$s" && TOTAL_LIMIT=$(( TOTAL_LIMIT + ${LIMIT[$s]} ))
done

if [ "$DRY" = 1 ]; then
  step_head() { echo "# step $1: limit ${LIMIT[$1]} s, estimated ${ESTIMATE[$1]} s on a GPU"; }
  step_head environment
  echo "python - (the machine and versions; exit status 3 without CUDA)"
  if wanted cuda_sync; then
    step_head cuda_sync
    echo "python ${CUDA_SYNC[*]@Q}"
  fi
  if wanted tests; then
    step_head tests
    echo "# the node ids collected here (at most $COLLECT_LIMIT s), dealt round-robin to" \
      "GPU_SH_JOBS shards ($JOBS here)"
    echo "python ${COLLECT[*]@Q}"
    mapfile -t a < <(shard_line K NODE_IDS_OF_SHARD_K)
    echo "python ${a[*]@Q}"
    echo "python ${COMPILE[*]@Q}"
  fi
  for name in "${BENCHMARKS[@]}"; do
    wanted "$name" || continue
    step_head "$name"
    declare -n c=${name^^}
    echo "python ${c[*]@Q}"
    unset -n c
  done
  echo "# total of the limits: $TOTAL_LIMIT s"
  exit 0
fi

# ---------------------------------------------------------------- running the steps
for s in "${STEPS[@]}"; do LIMIT[$s]=$(( ${LIMIT[$s]} * FACTOR )); done
COLLECT_LIMIT=$(( COLLECT_LIMIT * FACTOR ))
START=$(date +%s)
FAILED=()
BG=()  # the wrappers of the running commands
RUNNING=()  # their names and limits, "NAME LIMIT"

run_bg() {  # run_bg NAME LIMIT ARGS... : "$PYTHON" ARGS in the background, logged
  local name=$1 limit=$2
  shift 2
  (
    t0=$(date +%s)
    child=
    trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
    timeout --kill-after=5 "$limit" "$PYTHON" "$@" > "$RES/logs/$name.log" 2>&1 &
    child=$!
    wait "$child"
    rc=$?
    while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
    echo "$rc $(( $(date +%s) - t0 ))" > "$RES/logs/$name.status"
  ) &
  BG+=($!)
  RUNNING+=("$name $limit")
}

wait_bg() {
  local p
  for p in "${BG[@]}"; do wait "$p" 2>/dev/null; done
  BG=()
  RUNNING=()
}

status_text() {  # status_text NAME RC
  case "$2" in
    0) echo "ok" ;;
    124|137) echo "$2 (time limit)" ;;
    143) echo "$2 (stopped)" ;;
    5) [[ $1 == shard_* ]] && echo "ok (no test selected)" || echo "$2" ;;
    *) echo "$2" ;;
  esac
}

declare -A RECORDED=()
record() {  # record NAME LIMIT ESTIMATE : one summary row from the step's status file
  local name=$1 rc=none secs=- text
  [ -n "${RECORDED[$name]:-}" ] && return 0
  RECORDED[$name]=1
  if [ -f "$RES/logs/$name.status" ]; then read -r rc secs < "$RES/logs/$name.status"; fi
  text=$(status_text "$name" "$rc")
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$text" "$secs" "$2" "$3" >> "$RES/summary.md"
  if [[ $text != ok* ]]; then FAILED+=("$name"); fi
  echo "=== $name: $text in $secs s (limit $2 s)"
  tail -n 3 "$RES/logs/$name.log" 2>/dev/null | sed "s/^/  [$name] /"
}

copy_into_out() {  # copy_into_out FILE : into OUT_DIR through a rename
  [ -f "$RES/$1" ] || return 0
  cp "$RES/$1" "$OUT_DIR/.$1.$BASHPID" && mv -f "$OUT_DIR/.$1.$BASHPID" "$OUT_DIR/$1"
}

pack() {  # everything into OUT_DIR/gpu_results.tar.gz, through a rename
  local tmp="$OUT_DIR/.gpu_results.$BASHPID.tar.gz" rc
  copy_into_out summary.md
  copy_into_out environment.txt
  tar -czf "$tmp" -C "$SCRATCH" gpu_results 2>/dev/null
  rc=$?
  if [ "$rc" -le 1 ]; then  # 1: a file changed while it was read (a log being written)
    mv -f "$tmp" "$OUT_DIR/gpu_results.tar.gz"
  else
    rm -f "$tmp"
  fi
}

finish() {  # finish [STATUS]: the failures, the total, the last archive; exit
  if [ -n "${PACKER:-}" ]; then
    kill "$PACKER" 2>/dev/null
    wait "$PACKER" 2>/dev/null
    PACKER=
  fi
  rm -f "$OUT_DIR"/.gpu_results.*.tar.gz "$OUT_DIR"/.summary.md.* "$OUT_DIR"/.environment.txt.*
  {
    echo
    echo "total: $(( $(date +%s) - START )) s (the limits add up to $TOTAL_LIMIT s" \
      "x $FACTOR)"
    for name in "${FAILED[@]}"; do
      echo
      echo "### $name failed: the last lines of logs/$name.log"
      echo
      echo '```'
      { grep -E '^(FAILED|ERROR) ' "$RES/logs/$name.log" | head -n 30
        tail -n 15 "$RES/logs/$name.log"; } 2>/dev/null
      echo '```'
    done
  } >> "$RES/summary.md"
  pack
  echo
  cat "$RES/summary.md"
  echo "results: $OUT_DIR/gpu_results.tar.gz (unpacked in $RES)"
  if [ "${#FAILED[@]}" -ne 0 ]; then
    echo "gpu.sh: failed: ${FAILED[*]}" >&2
    exit "${1:-1}"
  fi
  exit 0
}

on_signal() {  # stopped from outside: stop the commands, keep what they wrote
  trap - TERM INT
  local p
  for p in "${BG[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${BG[@]}"; do wait "$p" 2>/dev/null; done
  local r
  for r in "${RUNNING[@]}"; do
    [ -f "$RES/logs/${r% *}.status" ] && record "${r% *}" "${r#* }" -
  done
  echo "| (stopped from outside) | 143 | | | |" >> "$RES/summary.md"
  FAILED+=("stopped")
  [ -d "$OUT_DIR" ] && finish 143
  exit 143
}
trap on_signal TERM INT

# ---------------------------------------------------------------- environment
ENV_CODE=$(cat <<'EOF'
import importlib.util, os, platform, subprocess, sys
import torch
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
for name in ("softmetrics", "numpy", "triton", "sacrebleu", "nltk", "torchmetrics", "info_nce",
             "pytorch_metric_learning", "sklearn", "scipy", "matplotlib", "hypothesis",
             "pytest"):
    if importlib.util.find_spec(name) is None:
        print(f"{name}: not installed")
    else:
        print(f"{name}: {getattr(__import__(name), '__version__', 'installed')}")
try:
    print(subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,"
                          "clocks.max.sm,power.limit", "--format=csv"],
                         capture_output=True, text=True, timeout=10).stdout.strip())
except (OSError, subprocess.SubprocessError):
    print("nvidia-smi: not available")
sys.exit(3 if sys.argv[1] == "gpu" and not torch.cuda.is_available() else 0)
EOF
)
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "mode: $MODE"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(
    git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "interpreter: $PYTHON"
} > "$RES/environment.txt"
run_bg environment "${LIMIT[environment]}" -c "$ENV_CODE" "$MODE"
wait_bg
cat "$RES/logs/environment.log" >> "$RES/environment.txt"
read -r env_rc _ < "$RES/logs/environment.status"
if [ "$MODE" = gpu ] && [ "$env_rc" -ne 0 ]; then
  # without a GPU confirmed (none visible, or the check itself failed or ran out of
  # time) nothing runs: the steps would only fail, one limit after the other
  if [ "$env_rc" -eq 3 ]; then
    echo "gpu.sh: no CUDA GPU is visible to torch; nothing was run." >&2
  else
    echo "gpu.sh: no CUDA GPU confirmed: the check of the machine ended with status" \
      "$(status_text environment "$env_rc"); nothing was run." >&2
  fi
  echo "Use --cpu to check the command lines on the CPU." >&2
  tail -n 5 "$RES/environment.txt" >&2
  [ -z "${GPU_SH_SCRATCH:-}" ] && rm -rf "$SCRATCH"
  exit 3
fi
mkdir -p "$OUT_DIR" || exit 2
cat "$RES/environment.txt"
{
  echo "# softmetrics GPU check ($MODE mode)"
  echo
  grep -E '^(date|commit|torch|GPU):' "$RES/environment.txt"
  echo
  echo "| step | status | seconds | limit (s) | estimate on a GPU (s) |"
  echo "|---|---|---:|---:|---:|"
} > "$RES/summary.md"
record environment "${LIMIT[environment]}" "${ESTIMATE[environment]}"
pack
# packed every GPU_SH_PACK_S seconds (default 20); told to stop (TERM), the packer ends its
# copy in progress, rename included, before it exits, so no temporary file is left behind
(
  stop=0 nap=
  trap 'stop=1; [ -n "$nap" ] && kill "$nap" 2>/dev/null' TERM
  while [ "$stop" = 0 ]; do
    sleep "${GPU_SH_PACK_S:-20}" &
    nap=$!
    wait "$nap"
    nap=
    [ "$stop" = 0 ] && pack
  done
) &
PACKER=$!

# ---------------------------------------------------------------- (1) no host synchronisation
if wanted cuda_sync; then
  run_bg cuda_sync "${LIMIT[cuda_sync]}" "${CUDA_SYNC[@]}"
  wait_bg
  record cuda_sync "${LIMIT[cuda_sync]}" "${ESTIMATE[cuda_sync]}"
  pack
fi

# ---------------------------------------------------------------- (2) tests, compile, autocast
if wanted tests; then
  T0=$(date +%s)
  run_bg compile "${LIMIT[tests]}" "${COMPILE[@]}"
  run_bg collect "$COLLECT_LIMIT" "${COLLECT[@]}"
  wait "${BG[-1]}"
  mapfile -t NODES < <(grep '::' "$RES/logs/collect.log")
  record collect "$COLLECT_LIMIT" -
  echo "=== tests: ${#NODES[@]} tests of ${DEVICE_FILES[*]} in $JOBS shards on $DEVICE"
  left=$(( ${LIMIT[tests]} - ($(date +%s) - T0) ))
  if [ "${#NODES[@]}" -eq 0 ]; then
    [[ " ${FAILED[*]} " == *" collect "* ]] || FAILED+=(collect)
  elif [ "$left" -gt 0 ]; then
    for (( k = 1; k <= JOBS; k++ )); do
      shard=()
      for (( i = k - 1; i < ${#NODES[@]}; i += JOBS )); do shard+=("${NODES[$i]}"); done
      [ "${#shard[@]}" -eq 0 ] && continue
      mapfile -t a < <(shard_line "$k" "${shard[@]}")
      run_bg "shard_$k" "$left" "${a[@]}"
    done
  fi
  wait_bg
  for (( k = 1; k <= JOBS; k++ )); do
    [ -f "$RES/logs/shard_$k.status" ] && record "shard_$k" "${LIMIT[tests]}" -
  done
  record compile "${LIMIT[tests]}" -
  echo "| tests (all of the above) | | $(( $(date +%s) - T0 )) | ${LIMIT[tests]} | ${ESTIMATE[tests]} |" \
    >> "$RES/summary.md"
  pack
fi

# ---------------------------------------------------------------- (3-7) benchmarks, one at a time
for name in "${BENCHMARKS[@]}"; do
  wanted "$name" || continue
  declare -n c=${name^^}
  run_bg "$name" "${LIMIT[$name]}" "${c[@]}"
  unset -n c
  wait_bg
  record "$name" "${LIMIT[$name]}" "${ESTIMATE[$name]}"
  pack
done

finish
