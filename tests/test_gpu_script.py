"""benchmarks/gpu.sh: its steps and their limits, its refusal without a GPU, a CPU run,
failing and stopped steps; and the checks it adds to the device-aware test files."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch

import softmetrics

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"
BENCHMARKS = ["speed", "bleu", "contrastive", "ranking", "compiled"]
# the steps in order of value, and the most the script may take in a 15-minute window
# (a machine start of one to two minutes and time to rerun one step)
STEPS = ["environment", "cuda_sync", "tests", *BENCHMARKS]
WINDOW_S = 570

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(*args: str, env: dict | None = None, timeout: float = 60):
    env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


def _dry_run() -> tuple[list[tuple[str, int]], dict[str, list[list[str]]], int]:
    """([(step, limit)], {step: command lines}, the printed total of the limits)."""
    proc = _run("--dry-run")
    assert proc.returncode == 0, proc.stderr
    steps, commands, total = [], {}, None
    for line in proc.stdout.splitlines():
        if line.startswith("# step "):
            name, rest = line[len("# step "):].split(": limit ")
            steps.append((name, int(rest.split(" s,")[0])))
            commands[name] = []
        elif line.startswith("# total of the limits: "):
            total = int(line.split(": ")[1].split()[0])
        elif line.startswith("python ") and steps:
            commands[steps[-1][0]].append(shlex.split(line))
    return steps, commands, total


def _arg(command: list[str], flag: str, count: int = 1) -> list[str] | str:
    i = command.index(flag)
    return command[i + 1] if count == 1 else command[i + 1:i + 1 + count]


def test_dry_run_orders_the_steps_and_fits_the_window() -> None:
    steps, commands, total = _dry_run()
    assert [name for name, _ in steps] == STEPS
    assert total == sum(limit for _, limit in steps) <= WINDOW_S
    # (1) no host synchronisation, on CUDA
    (sync,) = commands["cuda_sync"]
    assert "tests/test_cuda_sync.py" in sync and _arg(sync, "--device") == "cuda"
    # (2) the device-aware files, non-slow, on CUDA; the compile and autocast checks
    collect, shard, compile_ = commands["tests"]
    assert "--collect-only" in collect and "not slow and not browser" in collect
    assert "--device-tests-only" in collect
    files = {a for a in collect if a.startswith("tests/")}
    assert {"tests/test_classification.py", "tests/test_contrastive.py",
            "tests/test_ranking.py", "tests/test_text.py",
            "tests/test_fuzz_families.py"} <= files
    assert "tests/test_compare_ce.py" not in files and "tests/test_cuda_sync.py" not in files
    for c in (collect, shard, compile_):
        assert _arg(c, "--device") == "cuda"
    assert "--collect-only" not in shard and "not slow and not browser" in shard
    assert "tests/test_gpu_script.py" in compile_ and "slow or not slow" in compile_
    assert _arg(compile_, "-k") == "compiled or autocast"
    # (3) speed: the headline sizes first, a fixed number of timed calls
    (speed,) = commands["speed"]
    assert _arg(speed, "--sizes", 4) == ["65536x1000", "4096x1000", "65536x10", "4096x10"]
    assert "--runs" in speed
    # (4) BLEU on the GPU first
    (bleu,) = commands["bleu"]
    assert _arg(bleu, "--device") == "cuda"
    assert _arg(bleu, "--gpu-batches", 3) == ["16384", "4096", "65536"]
    assert _arg(bleu, "--gpu-lengths", 2) == ["32", "128"]
    # (5) InfoNCE: the automatic tiles against the naive loss; the memory at 2^18, 2^20
    (contrastive,) = commands["contrastive"]
    assert _arg(contrastive, "--methods", 2) == ["naive", "softmetrics_auto"]
    assert _arg(contrastive, "--sizes", 2) == ["16384", "65536"]
    assert _arg(contrastive, "--d") == "512" and _arg(contrastive, "--scale-d") == "512"
    assert _arg(contrastive, "--scale-sizes", 2) == [str(2**18), str(2**20)]
    # (6) ranking, CUDA before the CPU
    (ranking,) = commands["ranking"]
    assert _arg(ranking, "--devices", 2) == ["cuda", "cpu"]
    # (7) compiled losses where eager mode is bound by kernel launches: F1 first, without
    # and with CUDA graphs
    (compiled,) = commands["compiled"]
    assert _arg(compiled, "--sizes", 2) == ["4096x10", "65536x10"]
    assert _arg(compiled, "--losses") == "SoftF1Loss" and "F.cross_entropy" in compiled
    assert _arg(compiled, "--modes", 2) == ["default", "reduce-overhead"]
    limits = dict(steps)
    for name in BENCHMARKS:
        (c,) = commands[name]
        assert c[1] == f"benchmarks/{name}.py" and "--smoke" not in c
        assert _arg(c, "--out") == f"RESULTS/{name}", c
        # each benchmark stops itself before its step's limit stops it
        assert 0 < float(_arg(c, "--budget-s")) < limits[name]


def test_only_reruns_the_named_steps() -> None:
    proc = _run("--dry-run", "--only", "bleu,cuda_sync")
    assert proc.returncode == 0, proc.stderr
    steps = [line.split(":")[0][len("# step "):] for line in proc.stdout.splitlines()
             if line.startswith("# step ")]
    assert steps == ["environment", "cuda_sync", "bleu"]
    assert "# total of the limits: 115 s" in proc.stdout
    proc = _run("--dry-run", "--only=nothing")
    assert proc.returncode == 2 and "unknown step nothing" in proc.stderr


def _collected(*args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--collect-only", "-m", "not slow", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_device_tests_only_keeps_the_tests_that_take_the_device() -> None:
    # the GPU run collects with this option: the tests that do not take the `device`
    # fixture run on the CPU whatever the device, so they would spend the GPU's time
    every = _collected("tests/test_kappa.py")
    kept = _collected("--device-tests-only", "tests/test_kappa.py")
    functions = {node.split("::")[1].split("[")[0] for node in kept}
    assert functions == {"test_fused_disagreement_equals_autograd",
                         "test_runs_on_the_device_under_test"}
    assert kept == [node for node in every if node.split("::")[1].split("[")[0] in functions]
    assert 0 < len(kept) < len(every)


@pytest.mark.slow
def test_benchmark_flags_exist() -> None:
    """Every flag gpu.sh passes appears in the benchmark's own `--help` (about 15 s)."""
    _, commands, _ = _dry_run()
    for name in BENCHMARKS:
        (c,) = commands[name]
        proc = subprocess.run([sys.executable, c[1], "--help"], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        for flag in (a for a in c[2:] if a.startswith("--")):
            assert flag in proc.stdout, (c[1], flag)


@pytest.mark.slow
def test_every_benchmark_stops_at_its_budget_with_its_results_written(tmp_path: Path) -> None:
    """The CPU mode's command lines with a budget of 0 s: each benchmark stops before its
    first measurement, exits 0, and its JSON says where it stopped (about a minute)."""
    proc = _run("--cpu", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = [c for c in (shlex.split(line) for line in proc.stdout.splitlines()
                         if line.startswith("python "))
             if c[1].startswith("benchmarks/")]
    assert [Path(c[1]).stem for c in lines] == BENCHMARKS
    for c in lines:
        name = Path(c[1]).stem
        args = [str(tmp_path / name) if a == f"RESULTS/{name}" else a for a in c[2:]]
        args[args.index("--budget-s") + 1] = "0"
        done = subprocess.run([sys.executable, c[1], *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads((tmp_path / name / f"{name}.json").read_text())
        assert result["stopped"].startswith("time budget of 0 s spent"), name
        assert not any("median_s" in r or "loss_ms" in r for r in result["rows"]), name


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_refuses_to_run_without_gpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run(str(out), env={"GPU_SH_SCRATCH": str(tmp_path / "scratch")})
    assert proc.returncode == 3
    assert "no CUDA GPU" in proc.stderr and "--cpu" in proc.stderr
    assert not out.exists()


def test_refuses_to_run_when_the_gpu_check_fails(tmp_path: Path) -> None:
    """A check of the machine that fails (here: Python cannot even start) confirms no
    GPU: nothing runs, nothing is written, exit status 3."""
    out = tmp_path / "out"
    proc = _run(str(out), env={"PYTHON": "false", "GPU_SH_SCRATCH": str(tmp_path / "s")})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no CUDA GPU confirmed" in proc.stderr and "status 1" in proc.stderr
    assert not out.exists()


def test_needs_an_output_folder() -> None:
    proc = _run(env={"OUT": ""})
    assert proc.returncode == 2
    assert "no output folder" in proc.stderr
    assert _run("--bogus").returncode == 2


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _summary_rows(summary: str) -> dict[str, str]:
    """{step: status} from the summary's table."""
    rows = {}
    for line in summary.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 5:
            rows[cells[0]] = cells[1]
    return rows


FAKE_PYTHON = """#!/usr/bin/env bash
# stands in for Python: the environment and the tests pass at once, one benchmark fails
# and one waits to be stopped
case "$*" in
  *--collect-only*tests/*) printf 'tests/test_a.py::test_one\ntests/test_b.py::test_two\n' ;;
  -c*) echo "torch: fake"; echo "GPU: none" ;;
  *benchmarks/bleu.py*) echo "bleu fails on purpose" >&2; exit 7 ;;
  *benchmarks/"$FAKE_WAIT".py*) touch "$FAKE_FLAG"; sleep 60 ;;
  *) echo "ran: $*" ;;
esac
"""


def _fake_python(tmp_path: Path) -> Path:
    fake = tmp_path / "fake_python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return fake


def test_a_failing_step_does_not_stop_the_others(tmp_path: Path) -> None:
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    proc = _run("--cpu", str(out), env={"PYTHON": str(_fake_python(tmp_path)),
                                        "GPU_SH_SCRATCH": str(scratch), "GPU_SH_JOBS": "2",
                                        "FAKE_WAIT": "none", "FAKE_FLAG": "/dev/null"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "failed: bleu" in proc.stderr
    rows = _summary_rows((out / "summary.md").read_text())
    assert rows["bleu"] == "7"
    for step in ("environment", "cuda_sync", "collect", "shard_1", "shard_2", "compile",
                 "speed", "contrastive", "ranking"):
        assert rows[step] == "ok", (step, rows)
    assert "bleu fails on purpose" in (out / "summary.md").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["environment.txt", "gpu_results.tar.gz",
                                                     "summary.md"]
    members = _members(out / "gpu_results.tar.gz")
    assert b"tests/test_a.py::test_one" in members["gpu_results/logs/shard_1.log"]
    assert b"tests/test_b.py::test_two" in members["gpu_results/logs/shard_2.log"]
    assert members["gpu_results/summary.md"] == (out / "summary.md").read_bytes()


def test_the_periodic_packing_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The packing every `GPU_SH_PACK_S` seconds copies into the output folder through a
    temporary file and a rename; stopping it at the end must let a copy in progress
    finish its rename. Here the copies are slow (a `cp` that waits 0.3 s) and the packing
    runs every 0.05 s, so the end of the run nearly always meets a copy in progress (an
    earlier version left `.summary.md.<pid>` behind)."""
    out, scratch, bin_dir = tmp_path / "out", tmp_path / "scratch", tmp_path / "bin"
    bin_dir.mkdir()
    slow_cp = bin_dir / "cp"
    slow_cp.write_text(f"#!/usr/bin/env bash\nsleep 0.3\nexec {shutil.which('cp')} \"$@\"\n")
    slow_cp.chmod(0o755)
    proc = _run("--cpu", str(out), env={
        "PYTHON": str(_fake_python(tmp_path)), "GPU_SH_SCRATCH": str(scratch),
        "GPU_SH_JOBS": "1", "FAKE_WAIT": "none", "FAKE_FLAG": "/dev/null",
        "GPU_SH_PACK_S": "0.05", "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the fake bleu step fails
    time.sleep(0.5)  # a copy that outlived the script would land by now
    assert sorted(p.name for p in out.iterdir()) == ["environment.txt", "gpu_results.tar.gz",
                                                     "summary.md"]


def test_stopped_from_outside_keeps_the_archive(tmp_path: Path) -> None:
    """SIGTERM in the middle of a step: the step is stopped, the archive and the summary
    say so, and the script exits at once with 143."""
    out, scratch, flag = tmp_path / "out", tmp_path / "scratch", tmp_path / "waiting"
    env = {**os.environ, "PYTHON": str(_fake_python(tmp_path)), "GPU_SH_SCRATCH": str(scratch),
           "GPU_SH_JOBS": "1", "FAKE_WAIT": "contrastive", "FAKE_FLAG": str(flag)}
    proc = subprocess.Popen(["bash", str(SCRIPT), "--cpu", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not flag.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert flag.exists(), proc.communicate()
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert time.monotonic() - start < 20  # not the 60 s of the waiting step
    rows = _summary_rows((out / "summary.md").read_text())
    assert rows["speed"] == "ok" and rows["bleu"] == "7"
    assert rows["contrastive"].startswith("143")
    assert "ranking" not in rows
    assert "gpu_results/logs/contrastive.log" in _members(out / "gpu_results.tar.gz")


@pytest.mark.slow
def test_cpu_mode_writes_every_result(tmp_path: Path) -> None:
    """The same command lines on the CPU with tiny settings (one to three minutes)."""
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    proc = _run("--cpu", env={"OUT": str(out), "GPU_SH_SCRATCH": str(scratch),
                              "GPU_SH_JOBS": "2"}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # few files come back from a GPU machine: one archive, the summary, the environment
    assert sorted(p.name for p in out.iterdir()) == ["environment.txt", "gpu_results.tar.gz",
                                                     "summary.md"]
    env = (out / "environment.txt").read_text()
    assert f"torch: {torch.__version__}" in env and "GPU: none" in env
    rows = _summary_rows((out / "summary.md").read_text())
    for step in ("environment", "cuda_sync", "collect", "shard_1", "shard_2", "compile",
                 *BENCHMARKS):
        assert rows.get(step) == "ok", (step, rows)
    members = _members(out / "gpu_results.tar.gz")
    for name in BENCHMARKS:
        result = json.loads(members[f"gpu_results/{name}/{name}.json"])
        assert result["rows"], name
        assert not any("stopped" in r for r in result["rows"]), name
    contrastive = json.loads(members["gpu_results/contrastive/contrastive.json"])
    assert {r["dtype"] for r in contrastive["scale"]} == {"float32", "bfloat16"}
    assert all(r["peak_with_embeddings_bytes"] > 0 for r in contrastive["scale"])
    bleu = json.loads(members["gpu_results/bleu/bleu.json"])
    assert {r["part"] for r in bleu["rows"]} == {"device", "cpu"}
    assert all(v < 1e-9 for v in bleu["max_abs_diff_vs_sacrebleu"].values())
    for xml in ("cuda_sync", "shard_1", "shard_2", "compile"):
        assert f"gpu_results/tests/{xml}.xml" in members
    assert b"SoftF1Loss" in members["gpu_results/speed/speed_table.md"]
    assert "speed/speed_table.md" in str(members.keys())


# --------------------------------------------------------------------------------------
# checks that gpu.sh adds to the device-aware test files: torch.compile on the device
# (the other compile tests are slow and run on the CPU) and autocast in float16 and
# bfloat16 for the classification losses, which the other autocast tests leave out
# --------------------------------------------------------------------------------------


def _loss_case(name: str, device: torch.device):
    """(loss of a (N, 16) feature batch through a layer, the features, the layer)."""
    g = torch.Generator().manual_seed(0)
    features = torch.randn(512, 16, generator=g).to(device)
    if name == "infonce":
        # tiles of 64 candidates: the tiled autograd Function, not the full matrix
        loss_fn = softmetrics.InfoNCELoss(temperature=0.1, chunk_size=64, symmetric=True,
                                          validate_args=False)
        keys = (torch.randn(512, 8, generator=g) + 0.5).to(device)
        layer = torch.nn.Linear(16, 8).to(device)
        return (lambda x: loss_fn(x, keys)), features, layer
    target = torch.randint(0, 10, (512,), generator=g)
    target[::9] = -1  # ignored entries
    target = target.to(device)
    kw = dict(num_classes=10, ignore_index=-1, validate_args=False)
    loss_fn = {"f1": lambda: softmetrics.SoftF1Loss(task="multiclass", **kw),
               "mcc": lambda: softmetrics.SoftMCCLoss(task="multiclass", **kw),
               "topk": lambda: softmetrics.SoftTopKAccuracyLoss(k=3, **kw),
               # tiles of 64 positives: the pairwise statistic's operator
               "ap": lambda: softmetrics.SoftAveragePrecisionLoss(
                   task="multiclass", chunk_size=64, **kw)}[name]()
    layer = torch.nn.Linear(16, 10).to(device)
    return (lambda x: loss_fn(x, target)), features, layer


def _cpu_autocasts_to(dtype: torch.dtype) -> bool:
    """Whether CPU autocast takes `dtype` (asked of the setter, which raises before it
    changes anything; `torch.autocast` would raise half-way through entering)."""
    if hasattr(torch, "get_autocast_dtype"):  # the older pair is deprecated where this is
        get, put = (lambda: torch.get_autocast_dtype("cpu")), (
            lambda d: torch.set_autocast_dtype("cpu", d))
    else:
        get, put = torch.get_autocast_cpu_dtype, torch.set_autocast_cpu_dtype
    previous = get()
    try:
        put(dtype)
    except RuntimeError:
        return False
    put(previous)
    return True


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", ["f1", "mcc", "topk", "infonce"])
def test_autocast_gives_float32_loss_and_finite_gradients(name, dtype, device):
    """A layer under autocast feeds the loss: the loss is float32, equals the loss of the
    same half-precision outputs in float32, and the gradients are finite."""
    if device.type == "cpu" and not _cpu_autocasts_to(dtype):
        pytest.skip(f"this torch's CPU autocast has no {dtype} (torch 2.1: bfloat16 only)")
    loss_fn, features, layer = _loss_case(name, device)
    with torch.autocast(device.type, dtype=dtype):
        out = layer(features)
        assert out.dtype == dtype
        loss = loss_fn(out)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(loss, loss_fn(out.detach().float()), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        reference = loss_fn(layer(features))
    torch.testing.assert_close(loss, reference, atol=3e-2, rtol=3e-2)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["f1", "infonce", "ap"])
@pytest.mark.compile
def test_compiled_loss_equals_eager(name, device):
    """Forward and backward compile as one graph and give eager mode's value and
    gradients (gpu.sh runs this with --device cuda, where Triton kernels are generated).
    The tiled InfoNCE is one operator of its own in the graph, `softmetrics::info_nce_tiles`:
    a cold compilation took 5 s on the CPU, where tracing its 8 x 8 tiles per direction one
    by one took 55 s; multiclass soft AP's tiles are `softmetrics::positives_above`."""
    torch._dynamo.reset()
    loss_fn, features, layer = _loss_case(name, device)
    with torch.no_grad():
        x = layer(features)
    compiled = torch.compile(loss_fn, fullgraph=True)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    a = compiled(xa)
    a.backward()
    b = loss_fn(xb)
    b.backward()
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-6, rtol=1e-5)
