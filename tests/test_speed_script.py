"""Keep benchmarks/speed.py working: its smoke setting runs every loss once per size; a
full run writes its results after every row and stops at its time budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_speed_benchmark_smoke(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--smoke", "--threads", "1",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=True)
    table = result.stdout
    for name in ("SoftF1Loss", "SoftMCCLoss", "SoftTopKAccuracyLoss", "naive soft F1"):
        assert f"| {name} | cross_entropy |" in table
    # every ratio cell is a positive number followed by "x"
    rows = [line for line in table.splitlines() if line.startswith("| Soft")]
    cells = [c.strip() for line in rows for c in line.split("|")[3:-1]]
    assert cells and all(float(c.rstrip("x")) > 0 for c in cells)
    assert not any(tmp_path.iterdir()), "--smoke must not write results"


def _speed(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "speed.py"),
                             "--device", "cpu", "--threads", "1", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_results_are_written_after_every_row(tmp_path):
    """The JSON and the table hold each row while the run goes on, so a run that is
    killed keeps its figures, and a kill never leaves half a file."""
    proc = _speed("--sizes", "64x10", "16384x1000", "--runs", "1", "--rounds", "1",
                  "--out", str(tmp_path))
    result = tmp_path / "speed.json"
    deadline = time.monotonic() + 300
    try:
        rows = []
        while time.monotonic() < deadline and proc.poll() is None:
            if result.exists():
                rows = json.loads(result.read_text())["rows"]
                if len(rows) >= 2:
                    break
            time.sleep(0.05)
        running = proc.poll() is None
    finally:
        proc.kill()
        proc.communicate()
    assert running and len(rows) >= 2, proc.returncode
    rows = json.loads(result.read_text())["rows"]
    assert (rows[0]["n"], rows[0]["c"]) == (64, 10) and rows[0]["loss_ms"] > 0
    assert rows[0]["timing"] == "mean of 1 runs"
    assert "| SoftAccuracyLoss | cross_entropy |" in (tmp_path / "speed_table.md").read_text()


def test_budget_stops_before_the_next_row(tmp_path):
    proc = _speed("--sizes", "64x10", "--runs", "1", "--rounds", "1", "--budget-s", "0",
                  "--out", str(tmp_path))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    result = json.loads((tmp_path / "speed.json").read_text())
    assert result["rows"] == []
    assert result["stopped"].startswith("time budget of 0 s spent")
    assert "cpu N=64, C=10, SoftAccuracyLoss" in result["stopped"]
    assert result["stopped"] in (tmp_path / "speed_table.md").read_text()


def test_headline_sizes_come_first():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import speed
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert speed.SIZES[:2] == [(65536, 1000), (4096, 1000)]


def _speed_module():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import speed
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return speed


@pytest.mark.parametrize("seconds", [0.0, 0.03])
def test_page_faults_are_counted_per_call_made(monkeypatch, seconds):
    """`blocked_autorange` makes calls of its own to size its blocks (one whole call when a
    call takes longer than the run time); the faults of those calls are divided among
    them too, not among the measured calls alone."""
    import torch

    speed = _speed_module()
    faults = [0]
    monkeypatch.setattr(speed, "_minor_faults", lambda: faults[0])

    def one_fault_per_call(logits, target):
        faults[0] += 1
        time.sleep(seconds)
        return logits.sum()

    logits = torch.zeros(4, 3, requires_grad=True)
    _, per_step = speed._time(one_fault_per_call, logits, torch.zeros(4), 0.01,
                              torch.device("cpu"))
    assert per_step == 1.0
    _, per_step = speed._time(one_fault_per_call, logits, torch.zeros(4), 0.01,
                              torch.device("cpu"), runs=3)
    assert per_step == 1.0


def test_a_row_estimated_too_slow_is_not_run(capsys):
    """A row whose one call is estimated above the limit is left out with its estimate (one
    call on the first 4096 samples, scaled to N); the table says so in its cell."""
    import torch

    speed = _speed_module()
    rows, not_run = [], []
    speed.run(torch.device("cpu"), [(8192, 10)], 0.01, 1, runs=1, rows=rows,
              only=["SoftF1Loss", "SoftF1Loss (multilabel)"], max_call_s=1e-9,
              not_run=not_run)
    assert rows == [] and [r["loss"] for r in not_run] == ["SoftF1Loss",
                                                           "SoftF1Loss (multilabel)"]
    for r in not_run:
        assert r["probe_rows"] == 4096 and r["estimated_s"] == r["probe_s"] * 2 > 0
    table = speed.markdown(rows, speed.machine(), not_run=not_run, max_call_s=1e-9)
    assert "| SoftF1Loss | cross_entropy | not run (about " in table
    assert "first 4096 samples, times N / 4096" in table
    # with the limit as it is, the same rows run
    speed.run(torch.device("cpu"), [(8192, 10)], 0.01, 1, runs=1, rows=rows,
              only=["SoftF1Loss"], not_run=not_run)
    assert [r["loss"] for r in rows] == ["SoftF1Loss"] and rows[0]["ratio"] > 0
    assert rows[0]["estimated_s"] > 0
    table = speed.markdown(rows, speed.machine(), not_run=not_run[1:], max_call_s=1e-9)
    assert table.index("| SoftF1Loss |") < table.index("| SoftF1Loss (multilabel) |")


def test_small_inputs_time_both_paths_and_restore_the_constant():
    """The tuning part's small-input measurement times the plain and the blocked path at
    each size, marks the one `SMALL_COUNTS_ENTRIES` chooses, and leaves the
    constant as it found it."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import speed
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from softmetrics import _tuning

    default = _tuning.SMALL_COUNTS_ENTRIES
    rows = speed.small_inputs([(8, 4), (default, 2)], rounds=1, min_run_time=0.001)
    assert _tuning.SMALL_COUNTS_ENTRIES == default
    assert [r["plain_by_default"] for r in rows] == [True, False]
    assert all(r[path]["ratio"] > 0 for r in rows for path in ("plain", "blocked"))
    table = speed.tuning_markdown({"small_inputs": rows})
    assert "| (8, 4) | 32 |" in table and table.count("*") == 3  # the legend and two marks


def test_padding_times_both_widths_and_restores_the_constants():
    """The tuning part's padding measurement times each size padded to one vector and
    unpadded (rows a vector wide or wider: unpadded only), marks the width
    `softmax_width` chooses, and leaves the constants as it found them; in a fresh process with
    `ATEN_CPU_CAPABILITY=avx2` it reports the AVX2 kernels' 8 lanes."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import speed
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from softmetrics import _tuning

    names = ("CPU_SOFTMAX_MIN_WIDTH", "CPU_SOFTMAX_PAD_ROWS", "CPU_SOFTMAX_MAX_PADDING")
    default = [getattr(_tuning, name) for name in names]
    rows = speed.padding([(8, 4), (_tuning.CPU_SOFTMAX_PAD_ROWS, 6), (64, 16)], rounds=1,
                         min_run_time=0.001)  # 16 classes: a vector wide, unpadded only
    assert [getattr(_tuning, name) for name in names] == default
    assert [r["padded_by_default"] for r in rows] == [False, True, False]
    assert all(r[path]["ratio"] > 0 for r in rows[:2] for path in ("padded", "unpadded"))
    assert rows[2]["padded"] is None and rows[2]["unpadded"]["ratio"] > 0
    table = speed.tuning_markdown({"padding": rows})
    assert "| (8, 4) |" in table and table.count("*") == 4  # the legend and three marks
    assert "| (64, 16) |  |  | " in table
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"),
                           "--kernels-child", "--rounds", "1", "--min-run-time", "0.001",
                           "--threads", "1"],
                          env={**os.environ, **speed.AVX2}, capture_output=True, text=True,
                          timeout=600, check=True)
    kernels = json.loads(done.stdout.strip().splitlines()[-1])
    assert {r["capability"] for r in kernels["softmax_widths"]} == {"AVX2"}
    assert {r["lanes"] for r in kernels["padding"]} == {8}
    assert len(kernels["padding"]) == len(speed.TUNING_PADDING_SIZES)
    assert [r["padded"] is None for r in kernels["padding"]] == [
        c >= 8 for _, c in speed.TUNING_PADDING_SIZES]


# --------------------------------------------------------------------------------------
# benchmarks/compiled.py: the same losses under torch.compile


def _compiled(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compiled.py"),
                           "--device", "cpu", "--threads", "1", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.compile
def test_compiled_budget_stops_before_the_first_compilation(tmp_path):
    done = _compiled("--sizes", "64x10", "--budget-s", "0", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "compiled.json").read_text())
    assert result["rows"] == []
    assert result["stopped"].startswith("time budget of 0 s spent")
    assert "cpu N=64, C=10, SoftF1Loss (default)" in result["stopped"]
    assert result["stopped"] in (tmp_path / "compiled_table.md").read_text()


@pytest.mark.slow
@pytest.mark.compile
def test_compiled_rows_compile_each_loss_and_time_it_against_eager(tmp_path):
    """One row per loss and size, each compiled anew: its compile time, the compiled
    loss's ratio to eager cross-entropy and, for a soft loss, its eager ratio (about 30 s:
    two compilations)."""
    done = _compiled("--sizes", "128x10", "--losses", "SoftMCCLoss", "F.cross_entropy",
                     "--runs", "2", "--rounds", "1", "--out", str(tmp_path), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "compiled.json").read_text())["rows"]
    assert [(r["loss"], r["mode"], r["n"], r["c"]) for r in rows] == [
        ("SoftMCCLoss", "default", 128, 10), ("F.cross_entropy", "default", 128, 10)]
    assert all(r["compile_s"] > 0 and r["compiled"]["ratio"] > 0 for r in rows)
    assert rows[0]["eager"]["ratio"] > 0 and "eager" not in rows[1]
    table = (tmp_path / "compiled_table.md").read_text()
    assert "| SoftMCCLoss | default | " in table and "| cross_entropy | default | " in table
