"""The canvas tasks of `compare_ce.py` (segmentation, multilabel): data, metrics, fairness,
the grouped networks, and a smoke run end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("mlxtend")
pytest.importorskip("pandas")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import _canvas
import _nets
import _segmentation as seg
import _tasks

import softmetrics

# ---------------------------------------------------------------------------------------
# canvases


@pytest.fixture(scope="module")
def splits():
    return _canvas.make_splits(3, (40, 20, 20), 48)


def test_splits_use_disjoint_digit_images_and_cover_them():
    parts = _canvas.pools(3, 5000)
    assert sum(len(p) for p in parts) == 5000
    assert len(np.unique(np.concatenate(parts))) == 5000
    assert [len(p) for p in parts] == [3000, 1000, 1000]
    assert not np.array_equal(parts[0], _canvas.pools(4, 5000)[0])


def test_canvases_are_deterministic_per_seed(splits):
    again = _canvas.make_splits(3, (40, 20, 20), 48)
    other = _canvas.make_splits(4, (40, 20, 20), 48)
    for part in ("train", "val", "test"):
        torch.testing.assert_close(splits[part].images, again[part].images, rtol=0, atol=0)
        assert torch.equal(splits[part].masks, again[part].masks)
        assert torch.equal(splits[part].labels, again[part].labels)
    assert not torch.equal(splits["test"].masks, other["test"].masks)


def test_masks_label_exactly_the_inked_pixels(splits):
    for part in splits.values():
        assert part.images.shape[1:] == (1, 48, 48) and part.masks.shape[1:] == (48, 48)
        assert torch.equal(part.masks > 0, part.images[:, 0] >= _canvas.INK)
        assert part.masks.min() >= 0 and part.masks.max() < _canvas.NUM_CLASSES


def test_multilabel_targets_are_the_digits_of_the_mask(splits):
    for part in splits.values():
        for mask, labels in zip(part.masks, part.labels, strict=True):
            shown = {int(c) - 1 for c in torch.unique(mask) if c > 0}
            assert shown == set(np.flatnonzero(labels.numpy()).tolist())
            assert shown, "every canvas shows a digit"


def test_each_digit_is_pasted_with_its_class_and_its_size(monkeypatch):
    """With all-ink 'digits' and one digit per canvas, the label of a canvas is one square
    of its digit's class, whose side is in the range of that class (small for rare)."""
    monkeypatch.setattr(_canvas, "DIGITS_PER_CANVAS", (1, 1))
    classes = np.repeat(np.arange(10), 3)
    digits = np.ones((30, 28, 28), dtype=np.float32)
    out = _canvas.draw(digits, classes, np.arange(30), 200, 48, np.random.default_rng(0))
    sides = {False: [], True: []}
    for mask, labels in zip(out.masks, out.labels, strict=True):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        (d,) = np.flatnonzero(labels.numpy())
        assert set(torch.unique(mask).tolist()) == {0, d + 1}
        side = int(ys.max() - ys.min()) + 1
        assert side == int(xs.max() - xs.min()) + 1 == len(ys) ** 0.5
        sides[d in _canvas.RARE_DIGITS].append(side)
        lo, hi = _canvas.RARE_SIZE if d in _canvas.RARE_DIGITS else _canvas.SIZE
        assert lo <= side <= hi
    # drawn a quarter as often: 2 rare of 10 digits -> 1/17 of the canvases on average
    assert 0 < len(sides[True]) < 0.15 * 200


def test_rare_digits_are_rare_and_small(splits):
    counts = np.bincount(splits["train"].masks.flatten().numpy(), minlength=11)
    rare = [d + 1 for d in _canvas.RARE_DIGITS]
    common = [c for c in range(1, 11) if c not in rare]
    assert counts[0] / counts.sum() > 0.85
    assert counts[rare].max() < counts[common].min()


# ---------------------------------------------------------------------------------------
# metrics against scikit-learn


@pytest.mark.parametrize("seed", range(4))
def test_pixel_metrics_match_scikit_learn(seed):
    from sklearn.metrics import accuracy_score, f1_score, jaccard_score

    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 6, (3, 5, 5), generator=g)  # classes 6..10 absent
    pred = torch.where(torch.rand(3, 5, 5, generator=g) < 0.6, target,
                       torch.randint(0, 8, (3, 5, 5), generator=g))
    s = seg.seg_scores(target, pred)
    t, p = target.flatten().numpy(), pred.flatten().numpy()
    assert s["miou"] == pytest.approx(jaccard_score(t, p, average="macro"))
    assert s["dice"] == pytest.approx(f1_score(t, p, average="macro"))
    assert s["pixel_acc"] == pytest.approx(accuracy_score(t, p))
    per_class = jaccard_score(t, p, average=None, labels=range(11), zero_division=0)
    present = np.isin(np.arange(11), np.union1d(t, p))
    np.testing.assert_allclose(np.array(s["iou"])[present], per_class[present])
    assert np.isnan(np.array(s["iou"])[~present]).all()


def test_pixel_metrics_on_a_hand_computed_case():
    target = torch.tensor([[0, 0, 6, 6], [0, 0, 9, 9]])
    pred = torch.tensor([[0, 0, 6, 0], [0, 9, 9, 9]])
    s = seg.seg_scores(target, pred)
    # IoU: background 3/5, digit 5 (class 6) 1/2, digit 8 (class 9) 2/3
    assert s["miou"] == pytest.approx((3 / 5 + 1 / 2 + 2 / 3) / 3)
    # Dice: 6/8, 2/3, 4/5
    assert s["dice"] == pytest.approx((6 / 8 + 2 / 3 + 4 / 5) / 3)
    assert s["rare_iou"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert s["pixel_acc"] == pytest.approx(6 / 8)


def test_multilabel_metrics_and_tuned_thresholds():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y = (rng.random((60, 10)) < 0.3).astype(int)
    y[:, 9] = 0  # a label absent from validation keeps 0.5
    prob = np.clip(y * 0.4 + rng.random((60, 10)) * 0.6, 0, 1)
    s = seg.ml_scores(y, prob)
    assert s["macro_f1"] == pytest.approx(f1_score(y, prob >= 0.5, average="macro",
                                                   zero_division=0))
    thr = seg.tuned_thresholds(y, prob)
    assert thr[9] == 0.5
    for j in range(9):  # no cut scores a higher F1 on this label than the tuned one
        best = max(f1_score(y[:, j], prob[:, j] >= t, zero_division=0) for t in prob[:, j])
        assert f1_score(y[:, j], prob[:, j] >= thr[j], zero_division=0) == pytest.approx(best)


# ---------------------------------------------------------------------------------------
# grouped networks and objectives


@pytest.mark.parametrize("net, layers", [(_nets.unet, _nets.unet_layers(3, 11)),
                                         (_nets.cnn, _nets.cnn_layers(3, 10))])
def test_grouped_networks_are_independent(net, layers):
    """Network g of a group computes what it computes alone, and its gradient depends on its
    own loss only."""
    params = _nets.init(layers, [0, 1], 2)  # 4 networks
    with torch.no_grad():
        for p in params[1::2]:  # distinct biases too
            p.normal_()
    x = torch.rand(2, 4, 48, 48)
    out = net(params, x)
    for g in range(4):
        alone = [p[g:g + 1] for p in params]
        torch.testing.assert_close(net(alone, x[:, g:g + 1])[:, 0], out[:, g])
    grads = torch.autograd.grad(out[:, 2].sum(), params)
    for grad in grads:
        assert grad[[0, 1, 3]].abs().max() == 0 and grad[2].abs().max() > 0


def test_initial_weights_are_one_per_seed_and_shared_by_configurations():
    a = _nets.init(_nets.unet_layers(2, 11), [0, 1], 3)
    b = _nets.init(_nets.unet_layers(2, 11), [0, 1], 3)
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)
        assert torch.equal(p[0], p[2]) and torch.equal(p[3], p[5])
    assert not torch.equal(a[0][0], a[0][3])


@pytest.mark.parametrize("key", ["ce_dice", "tversky", "jaccard"])
def test_segmentation_objective_is_the_sum_of_each_networks_public_loss(key):
    loss = next(loss for loss in seg.seg_losses() if loss.key == key)
    configs = seg._configs(loss, 2)
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, 11, 6, 6, generator=g)
    target = torch.randint(0, 11, (3, 4, 6, 6), generator=g)
    expected = torch.zeros(())
    for n in range(4):
        cfg = configs[n % 2]
        module = getattr(softmetrics, loss.softmetrics_name)(
            task="multiclass", num_classes=11, average="macro",
            temperature=cfg.get("temperature", 1.0), **loss.options)
        value = module(logits[:, n], target[:, n])
        if loss.with_ce:
            value = (torch.nn.functional.cross_entropy(logits[:, n], target[:, n])
                     + cfg["weight"] * value)
        expected = expected + value
    torch.testing.assert_close(seg.objective(loss, configs, "segmentation")(logits, target),
                               expected)


def test_multilabel_objective_is_the_sum_of_each_networks_public_loss():
    loss = next(loss for loss in seg.ML_LOSSES if loss.key == "bce_f1")
    configs = seg._configs(loss, 2)
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(5, 4, 10, generator=g)
    target = (torch.rand(5, 4, 10, generator=g) < 0.3).float()
    expected = sum(
        torch.nn.functional.binary_cross_entropy_with_logits(logits[:, n], target[:, n])
        + configs[n % 2]["weight"] * softmetrics.SoftF1Loss(
            task="multilabel", num_classes=10, average="macro")(logits[:, n], target[:, n])
        for n in range(4))
    torch.testing.assert_close(seg.objective(loss, configs, "multilabel")(logits, target),
                               expected)


def test_the_segmentation_losses_include_the_lovasz_relaxation():
    keys = [loss.key for loss in seg.seg_losses()]
    assert keys == ["ce", "ce_dice", "jaccard", "dice", "tversky", "lovasz"]
    lovasz = seg.seg_losses()[-1]
    assert (lovasz.key, lovasz.softmetrics_name, lovasz.extra, lovasz.options) == (
        "lovasz", "SoftJaccardLoss", "temperature", {"relaxation": "lovasz"})


# ---------------------------------------------------------------------------------------
# the tasks end to end


def test_tasks_are_registered():
    assert _tasks.load("segmentation") is seg.SEGMENTATION
    assert _tasks.load("multilabel") is seg.MULTILABEL


@pytest.mark.parametrize("name", ["segmentation", "multilabel"])
def test_smoke_run_is_complete_and_fair(name, tmp_path):
    task = _tasks.load(name)
    task.check_available()
    torch.manual_seed(0)
    record = task.run([5, 6, 7], "smoke")
    sizes = (seg.SEG_SIZES if name == "segmentation" else seg.ML_SIZES)["smoke"]
    assert record["seeds"] == [5, 6, 7][:sizes.seeds]
    assert record["settings"]["steps"] == sizes.steps and record["seconds"] > 0
    metrics = seg.SEG_METRICS if name == "segmentation" else seg.ML_METRICS
    losses = record["losses"]
    # fairness: the same configuration budget and learning rates for every loss
    lrs = {tuple(c["lr"] for c in r["configs"]) for r in losses.values()}
    assert len(lrs) == 1 and len(next(iter(lrs))) == sizes.configs
    for r in losses.values():
        assert set(r["metrics"]) == set(metrics)
        for m in metrics:
            assert len(r["metrics"][m]) == len(record["seeds"])
            assert all(0 <= v <= 1 for v in r["metrics"][m])
            assert all(0 <= c < sizes.configs for c in r["chosen"][m])
    base = "ce" if name == "segmentation" else "bce"
    assert set(record["comparisons"][base]) == set(losses) - {base}
    md, text = task.markdown(record), task.console(record)
    assert all(r["label"] in md and r["label"] in text for r in losses.values())
    assert ("Caution: with" in text) == (len(record["seeds"]) < 5)
    names = task.plots(record, tmp_path)
    assert names and all((tmp_path / n).stat().st_size > 0 for n in names)
    assert all(n.startswith(f"compare_ce_{name}") for n in names)
    import json

    json.dumps(record)  # the record is JSON-serialisable
