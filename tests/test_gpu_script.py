"""benchmarks/gpu.sh: its command lines, its refusal without a GPU, and a CPU run."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"
BENCHMARKS = ["speed.py", "bleu.py", "contrastive.py", "ranking.py"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(*args: str, env: dict | None = None, timeout: float = 60):
    env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


def _dry_run() -> list[list[str]]:
    proc = _run("--dry-run")
    assert proc.returncode == 0, proc.stderr
    return [shlex.split(line) for line in proc.stdout.splitlines() if line.strip()]


def test_dry_run_covers_tests_and_every_benchmark() -> None:
    lines = _dry_run()
    pytest_lines = [c for c in lines if c[1:3] == ["-m", "pytest"]]
    test_files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py"))
    # every test file once, the non-slow selection, the device-aware ones on CUDA
    assert sorted(a for c in pytest_lines for a in c if a.startswith("tests/")) == test_files
    for c in pytest_lines:
        assert "not slow and not browser" in c
    on_cuda = {a for c in pytest_lines if "--device" in c
               and c[c.index("--device") + 1] == "cuda" for a in c if a.startswith("tests/")}
    assert "tests/test_classification.py" in on_cuda
    assert "tests/test_compare_ce.py" not in on_cuda
    bench = {Path(c[1]).name: c for c in lines if c[1].startswith("benchmarks/")}
    assert sorted(bench) == sorted(BENCHMARKS)
    for name, c in bench.items():
        assert c[c.index("--out") + 1] == f"OUT_DIR/{Path(name).stem}", c
        assert "--smoke" not in c
    for name in ("speed.py", "contrastive.py"):
        assert bench[name][bench[name].index("--device") + 1] == "cuda"


@pytest.mark.slow
def test_benchmark_flags_exist() -> None:
    """Every flag gpu.sh passes appears in the benchmark's own `--help` (about 15 s)."""
    for c in _dry_run():
        if not c[1].startswith("benchmarks/"):
            continue
        proc = subprocess.run([sys.executable, c[1], "--help"], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        for flag in (a for a in c[2:] if a.startswith("--")):
            assert flag in proc.stdout, (c[1], flag)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_refuses_to_run_without_gpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run(str(out))
    assert proc.returncode == 3
    assert "no CUDA GPU" in proc.stderr and "--cpu" in proc.stderr
    assert not out.exists()


def test_needs_an_output_folder() -> None:
    proc = _run(env={"OUT": ""})
    assert proc.returncode == 2
    assert "no output folder" in proc.stderr
    assert _run("--bogus").returncode == 2


@pytest.mark.slow
def test_cpu_mode_writes_every_result(tmp_path: Path) -> None:
    """The same command lines on the CPU with tiny settings (two to three minutes)."""
    out = tmp_path / "out"
    proc = _run("--cpu", env={"OUT": str(out)}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    env = (out / "environment.txt").read_text()
    assert f"torch: {torch.__version__}" in env and "GPU: none" in env
    summary = (out / "summary.md").read_text()
    for step in ("speed", "bleu", "contrastive", "ranking", "tests_test_classification"):
        assert f"| {step} | 0" in summary, summary
    for name in ("bleu/bleu.json", "contrastive/contrastive.json", "ranking/ranking.json"):
        assert json.loads((out / name).read_text())
    assert "SoftF1Loss" in (out / "logs" / "speed.log").read_text()
    assert (out / "tests" / "test_classification.xml").is_file()
