"""Keep benchmarks/speed.py working: its smoke setting runs every loss once per size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
