"""The contrastive pre-training task of compare_ce.py: its augmentation, label subsets,
linear probe (against scikit-learn) and a smoke run end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("mlxtend")

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _pretraining as pt  # noqa: E402
import _tasks  # noqa: E402


def _images(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 14, 14, generator=g)


def test_augmentation_keeps_shapes_is_fixed_by_its_seed_and_gives_different_views():
    x = _images()
    a = pt.augment(x, torch.Generator().manual_seed(3), background=-0.4)
    b = pt.augment(x, torch.Generator().manual_seed(3), background=-0.4)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(3)
    v1, v2 = pt.augment(x, g, background=-0.4), pt.augment(x, g, background=-0.4)
    assert not torch.allclose(v1, v2)
    # every image gets its own draw: two copies of one image give different views
    same = x[:1].expand(4, -1, -1, -1)
    views = pt.augment(same, torch.Generator().manual_seed(0), background=-0.4)
    assert not torch.allclose(views[0], views[1])


def test_augmentation_without_jitter_or_noise_is_the_identity_and_fills_with_background():
    x = _images()
    g = torch.Generator().manual_seed(0)
    same = pt.augment(x, g, background=-0.4, shift=0.0, rotate=0.0, scale=0.0, noise=0.0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    # a blank image stays blank under any affine jitter: the border is the background
    blank = torch.full((4, 1, 14, 14), -0.4)
    moved = pt.augment(blank, g, background=-0.4, noise=0.0, shift=0.5)
    torch.testing.assert_close(moved, blank)


def test_label_subsets_are_stratified_nested_and_fixed_per_seed():
    y = np.repeat(np.arange(10), [300, 290, 310, 305, 295, 280, 320, 300, 300, 300])
    sub = pt.label_subsets(y, (0.01, 0.1), seed=4)
    assert set(sub[0.01]) <= set(sub[0.1])
    for f, idx in sub.items():
        assert len(set(idx)) == len(idx)
        counts = np.bincount(y[idx], minlength=10)
        expected = [max(1, round(f * c)) for c in np.bincount(y)]
        assert counts.tolist() == expected
    again = pt.label_subsets(y, (0.01, 0.1), seed=4)
    other = pt.label_subsets(y, (0.01, 0.1), seed=5)
    assert np.array_equal(sub[0.1], again[0.1])
    assert not np.array_equal(sub[0.1], other[0.1])


def test_label_subsets_come_from_the_training_split_only():
    """The labeled images are training images: disjoint from validation and test."""
    data = pt.load_splits(0)
    sub = pt.label_subsets(data["y_train"], pt.FRACTIONS, 0)
    train = data["x_train"].reshape(len(data["x_train"]), -1)
    labeled = {row.tobytes() for row in train[sub[0.1]]}
    for part in ("val", "test"):
        rows = data[f"x_{part}"].reshape(len(data[f"x_{part}"]), -1)
        assert not labeled & {row.tobytes() for row in rows}
    assert sub[0.1].max() < len(train)
    assert data["x_train"].shape[1:] == (1, 14, 14)
    n = len(data["y_train"]) + len(data["y_val"]) + len(data["y_test"])
    assert n == 5000


@pytest.mark.parametrize("c", [0.01, 1.0, 100.0])
def test_the_probe_is_scikit_learns_logistic_regression(c):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6))
    y = (x[:, :3] @ rng.normal(size=(3, 4))).argmax(1) if c < 50 else rng.integers(0, 4, 120)
    w, b = pt.fit_logistic(torch.from_numpy(x), torch.from_numpy(y),
                           torch.tensor([c, 0.3]), 4)
    ref = LogisticRegression(C=c, tol=1e-12, max_iter=10_000, solver="newton-cg").fit(x, y)
    probs = torch.softmax(torch.from_numpy(x) @ w[0] + b[0], -1).numpy()
    np.testing.assert_allclose(probs, ref.predict_proba(x), atol=1e-6)
    np.testing.assert_allclose(w[0].numpy().T, ref.coef_, atol=1e-4, rtol=1e-4)


def test_probe_chooses_c_on_validation():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(10, 8)) * 3
    y = np.arange(200) % 10
    f = centres[y] + rng.normal(size=(200, 8))
    out = pt.probe(f[:50], y[:50], f[50:120], y[50:120], f[120:], y[120:], 3, f)
    assert out["C"] in np.exp(np.linspace(*np.log(pt.C_RANGE), 3)).tolist()
    assert out["val"] > 0.8 and out["test"] > 0.8


def test_task_is_registered():
    task = _tasks.load("pretraining")
    assert task is pt.TASK and task.title


def test_smoke_run_end_to_end(tmp_path, capsys):
    """`compare_ce.py --tasks pretraining --smoke`: the record, tables, plot and summary."""
    import compare_ce

    results = compare_ce.main(["--tasks", "pretraining", "--smoke", "--out", str(tmp_path)])
    record = results["pretraining"]
    assert json.loads((tmp_path / "compare_ce_pretraining.json").read_text()) == json.loads(
        json.dumps(record))
    assert record["size"] == "smoke" and record["seeds"] == [0, 1]
    fractions = [str(f) for f in pt.FRACTIONS]
    assert set(record["comparisons"]) == {"pretrained", "random"}
    for method in pt.METHODS:
        for f in fractions:
            acc = record["accuracy"][method][f]
            assert len(acc) == 2 and all(0 <= a <= 1 for a in acc)
    for rows in record["comparisons"].values():
        assert set(rows) == set(fractions)
        for c in rows.values():
            assert c["verdict"] in ("win", "tie", "loss") and c["ci_low"] <= c["ci_high"]
    assert record["labels"] == {"0.01": 30, "0.1": 300}
    for seed in record["per_seed"]:
        steps = [s for s, _ in seed["mi_curve"]]
        assert steps[0] == 0 and steps[-1] == record["settings"]["pretrain_steps"]
        assert all(v <= seed["log_n"] + 1e-6 for _, v in seed["mi_curve"])
    md = (tmp_path / "compare_ce_pretraining.md").read_text()
    assert md.endswith(pt.markdown(record)) and "Produced by `python benchmarks/compare_ce.py" in md
    assert "| InfoNCE + probe |" in md and "CE from scratch" in md
    out = capsys.readouterr().out
    assert "Contrastive pre-training\n" in out and pt.console(record) in out
    assert ("Caution: with" in pt.console(record)) == (len(record["seeds"]) < 5)
    assert (tmp_path / "compare_ce_pretraining.png").stat().st_size > 0


def test_the_page_block_is_the_record_rendered_by_the_current_code():
    """The docs' block and tables come from the record, which names a complete run of the
    documented command at the full size (the page says so)."""
    import compare_ce

    docs = BENCHMARKS.parent / "docs" / "benchmarks"
    record = json.loads((docs / "compare_ce_pretraining.json").read_text())
    block = pt.markdown(record)
    begin, end = compare_ce.PAGE_MARKERS["pretraining"]
    page = (docs / "compare_ce.md").read_text()
    assert page.split(begin, 1)[1].split(end, 1)[0].strip() == block.strip()
    assert (docs / "compare_ce_pretraining.md").read_text().endswith(block)
    assert (docs / "compare_ce_pretraining.png").exists()
    assert "compare_ce_pretraining.png" in page
    assert record["size"] == "full" and len(record["seeds"]) == pt.Settings.of("full").seeds
    assert record["run"]["commit"] and record["run"]["dirty"] is False
    command = record["run"]["command"].split()
    assert command[:2] == ["python", "benchmarks/compare_ce.py"]
    assert {"--full", "--record"} <= set(command)
    assert "pretraining" in command[command.index("--tasks") + 1].split(",")


def test_ce_trains_one_copy_per_learning_rate_as_separate_adam_runs_would():
    """The stacked training of `train_ce` (one copy per learning rate, all at once) gives
    each copy the network that torch's Adam would give it alone, on the same batches."""
    import copy

    import torch.nn.functional as F
    from torch import nn

    cfg = pt.Settings(width=8, features=8, ce_steps=4, ce_batch=8)
    x, y = _images(24, seed=1), torch.arange(24) % 10
    init = pt.init_encoder(0, cfg)
    lrs = [1e-3, 3e-2]
    models = pt.train_ce(init, x, y, lrs, cfg, 0, background=-0.4)
    assert len(models) == 2
    for lr, model in zip(lrs, models, strict=True):
        torch.manual_seed(1_000_003 * 0 + 37)
        ref = nn.Sequential(copy.deepcopy(init), nn.Linear(cfg.features, 10))
        opt = torch.optim.Adam(ref.parameters(), lr=lr)
        g = torch.Generator().manual_seed(90_000)
        for _ in range(cfg.ce_steps):
            idx = torch.randint(len(x), (cfg.ce_batch,), generator=g)
            loss = F.cross_entropy(ref(pt.view(x[idx], g, -0.4, cfg.ce_augment)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4, msg=name)
    # the two learning rates gave different networks
    assert not torch.allclose(models[0][1].weight, models[1][1].weight)


@pytest.mark.parametrize("projection_head", [False, True])
def test_pretraining_trains_the_encoder_with_or_without_a_projection_head(projection_head):
    cfg = pt.Settings(pretrain_steps=2, batch=8, width=8, features=8, mi_points=2,
                      projection_head=projection_head)
    init = pt.init_encoder(0, cfg)
    encoder, curve = pt.pretrain(init, _images(16), _images(16, seed=1), cfg, 0, -0.4)
    assert [s for s, _ in curve] == [0, 2]
    assert not torch.equal(encoder.net[0].weight, init.net[0].weight)
