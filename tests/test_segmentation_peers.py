"""softmetrics' segmentation losses agree with smp's and MONAI's under matched arguments.

The comparisons are those of `benchmarks/segmentation_peers.py` (whose record the
Segmentation page shows): each peer call listed there as *matched* must give the same
value and the same gradient with respect to the logits, in float64, on several seeded
batches; the calls listed as differing must differ where the page says they do.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("monai")
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
try:
    from _peers import smp_losses

    smp_losses()
except ImportError:  # pragma: no cover - smp not installed
    pytest.skip("segmentation_models_pytorch is not installed", allow_module_level=True)

TOL = 1e-6


def _script():
    spec = importlib.util.spec_from_file_location("_bench_segmentation_peers",
                                                  BENCHMARKS / "segmentation_peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


peers = _script()


@pytest.fixture(scope="module", params=[((2, 3, 8, 8), 0), ((3, 4, 12, 10), 1),
                                        ((2, 5, 16, 16), 2)], ids=lambda p: f"{p[0]}-{p[1]}")
def rows(request):
    size, seed = request.param
    return peers.compare(size, seed)


def test_matched_calls_agree_in_value_and_gradient(rows):
    checked = 0
    for row in rows:
        for peer in ("smp", "monai"):
            if peer not in row:
                continue
            checked += 1
            where = f"{row['label']} on {row['batch']}: {row['calls'][peer]}"
            assert row[f"{peer}_abs_diff"] <= TOL, where
            if not row["exact"]:
                assert row[f"{peer}_grad_max_abs_diff"] <= TOL, where
    # every family of the page has a matched peer: 34 calls, of which 6 are MONAI's on
    # the void batch, which a MONAI without `ignore_index` (before 1.6.1) cannot make
    from monai.losses import DiceLoss

    assert checked == (34 if peers._takes(DiceLoss, {"ignore_index": 0}) else 28)


def test_every_matched_loss_has_its_gradient_compared(rows):
    for row in rows:
        for peer in ("smp", "monai"):
            if peer in row and not row["exact"]:
                assert f"{peer}_grad_max_abs_diff" in row, row["label"]


def _row(rows, key, batch):
    return next(r for r in rows if r["key"] == key and r["batch"] == batch)


def test_the_documented_differences_are_real(rows):
    """What the page says differs does: smp's Dice masks an absent class to a loss of 0
    and divides by all C classes; smp's focal exponent applies to the mean over classes;
    MONAI's metrics leave out a class absent from an image's target even when predicted."""
    absent = _row(rows, "absent_default", "absent")
    assert absent["smp_default"] < absent["softmetrics"] - 0.05
    focal = _row(rows, "focal_tversky", "plain")
    assert abs(focal["smp_default"] - focal["softmetrics"]) > 1e-6
    miou = _row(rows, "miou_skip", "absent")
    assert miou["monai_default"] > miou["softmetrics"]


def test_a_smoothed_default_moves_the_value_only_slightly(rows):
    """MONAI's default smoothing (1e-5) changes a per-image Dice by far less than 1e-3."""
    dice = _row(rows, "dice_samplewise", "plain")
    assert 0 < abs(dice["monai_default"] - dice["softmetrics"]) < 1e-3


def test_the_lovasz_rows_are_compared_with_smp(rows):
    lovasz = [r for r in rows if r["key"] in ("lovasz", "lovasz_samplewise")]
    assert {(r["key"], r["batch"]) for r in lovasz} == {
        (k, b) for k in ("lovasz", "lovasz_samplewise") for b in ("plain", "void")}
    assert all("smp" in r["calls"] for r in lovasz)


def test_smoke_run_prints_the_tables_and_writes_nothing(capsys, monkeypatch):
    written = []
    monkeypatch.setattr(peers, "write_atomic", lambda path, text: written.append(path))
    assert peers.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "| loss | batch | softmetrics |" in out and "| loss | softmetrics | smp |" in out
    assert not written


def test_a_smoke_run_never_writes_the_record(capsys):
    with pytest.raises(SystemExit):
        peers.main(["--record", "--smoke"])
    assert "--record" in capsys.readouterr().err


def _speed(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / "segmentation_speed.py"),
                           "--device", "cpu", "--threads", "1", *args],
                          capture_output=True, text=True, timeout=300, **kw)


def test_segmentation_speed_smoke_times_every_column(tmp_path):
    """The speed benchmark's smoke run: every matched definition on both batches, with
    softmetrics checked and unchecked and each peer that has the loss; nothing written."""
    done = _speed("--smoke", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| loss | softmetrics | softmetrics, validate_args=False |")
    by_label = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in table[1:]}
    assert set(by_label) == {"Dice", "Dice, void 255", "Jaccard (IoU)",
                             "Jaccard (IoU), void 255", "Tversky (0.3, 0.7)",
                             "Tversky (0.3, 0.7), void 255", "generalized Dice", "Lovász",
                             "Lovász, void 255"}
    for label, cells in by_label.items():
        ratios = [c.strip() for c in cells[:4]]
        assert all(r == "—" or float(r.rstrip("x")) > 0 for r in ratios), label
        assert ratios[0] != "—" and ratios[1] != "—"
    assert by_label["Dice"][2].strip() != "—" and by_label["Dice"][3].strip() != "—"
    assert not any(tmp_path.iterdir()), "--smoke must not write results"


def test_a_peer_without_an_argument_has_no_call(monkeypatch):
    """Where the installed MONAI lacks an argument (`ignore_index` before MONAI 1.6.1),
    its calls that need it are left out ("—"), and no other call is."""
    everything = peers.cases(3)
    monkeypatch.setattr(peers, "_takes", lambda cls, options: "ignore_index" not in options)
    without = peers.cases(3)
    assert [(c.key, c.batch) for c in without] == [(c.key, c.batch) for c in everything]
    for old, new in zip(everything, without, strict=True):
        for peer in ("smp", "smp_default", "monai", "monai_default"):
            gone = peer.startswith("monai") and old.batch == "void"
            assert (getattr(new, peer) is None) == (gone or getattr(old, peer) is None), (
                old.key, old.batch, peer)


def test_segmentation_speed_budget_stops_before_the_first_row(tmp_path):
    done = _speed("--size", "2x3x8x8", "--runs", "1", "--rounds", "1", "--budget-s", "0",
                  "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "segmentation_speed.json").read_text())
    assert result["rows"] == [] and result["stopped"].startswith("time budget of 0 s spent")
    assert result["stopped"] in (tmp_path / "segmentation_speed_table.md").read_text()
