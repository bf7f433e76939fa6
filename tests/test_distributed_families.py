"""Ranking losses, InfoNCE and SigLIP across processes (gloo, spawned here); ranking
running statistics.

One worker per world size runs every case: each process takes its slice of a global batch
(slices of different sizes where N is not a multiple of the world size), and the loss, the
gradient of its slice and the exact metric are compared with one process on the whole batch.
"""

from __future__ import annotations

import pytest
import torch

import softmetrics
from softmetrics import functional as F

from .spawn import (
    assert_close_to,
    assert_equals_whole_batch,
    rank_rows,
    sliced_loss,
    spawn,
)
from .test_siglip import assert_siglip_equals_whole_batch, siglip_rank_results

C, D = 3, 5


# ---------------------------------------------------------------------------------------
# cases: (name, rows N, make(**kw) -> callable(x, y) or info_nce call)


def _ranking_configs():
    """(name, N, loss factory, task): binary, multilabel, multiclass; ignore_index, tiles."""
    return [
        ("auroc-binary-ignore", 24, lambda **kw: softmetrics.SoftAUROCLoss(
            task="binary", ignore_index=-1, **kw), "binary"),
        ("ap-multilabel-macro-ignore", 23, lambda **kw: softmetrics.SoftAveragePrecisionLoss(
            task="multilabel", num_classes=C, ignore_index=-1, **kw), "multilabel"),
        ("cap-multiclass-weighted-tiled", 23, lambda **kw:
         softmetrics.SoftCalibratedAveragePrecisionLoss(
             task="multiclass", num_classes=C + 1, average="weighted", ignore_index=-1,
             chunk_size=5, **kw), "multiclass"),
        ("auroc-multilabel-micro", 22, lambda **kw: softmetrics.SoftAUROCLoss(
            task="multilabel", num_classes=C, average="micro", ignore_index=-1, **kw),
         "multilabel"),
    ]


def _ranking_data(task: str, n: int, seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    if task == "binary":
        x = torch.randn(n, generator=g, dtype=torch.float64)
        y = torch.randint(0, 2, (n,), generator=g)
        y[::5] = -1
    elif task == "multiclass":
        x = torch.randn(n, C + 1, generator=g, dtype=torch.float64)
        y = torch.randint(0, C + 1, (n,), generator=g)
        y[2::7] = -1
    else:
        x = torch.randn(n, C, generator=g, dtype=torch.float64)
        y = torch.randint(0, 2, (n, C), generator=g)
        y[1::6, 1] = -1
    return x, y


def _nce_configs():
    """(name, N, info_nce options, whether to check the Module's metric too)."""
    return [
        ("plain", 24, dict(temperature=0.1)),
        ("shared-negatives", 23, dict(temperature=0.2, negatives="shared")),
        ("symmetric-query-negatives", 23, dict(temperature=0.3, symmetric=True,
                                               query_negatives=True)),
        ("tiled-symmetric-query-negatives-sum", 23, dict(
            temperature=0.3, symmetric=True, query_negatives=True, chunk_size=4,
            reduction="sum")),
        ("tiled-none", 22, dict(temperature=0.5, chunk_size=3, reduction="none")),
        # no in-batch candidates: the mean and the sum are still over every process's queries
        ("negatives-only", 23, dict(temperature=0.2, negatives="shared",
                                    in_batch_negatives=False)),
        ("negatives-only-sum", 22, dict(temperature=0.2, negatives="shared",
                                        in_batch_negatives=False, reduction="sum")),
    ]


def _nce_data(n: int, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, D, generator=g, dtype=torch.float64)
    k = q + 0.8 * torch.randn(n, D, generator=g, dtype=torch.float64)
    negatives = torch.randn(6, D, generator=g, dtype=torch.float64)
    return q, k, negatives


def _nce_call(q, k, negatives, options, **kw):
    options = dict(options)
    if options.pop("negatives", None) == "shared":
        kw["negatives"] = negatives
    return F.info_nce(q, k, **options, **kw)


MOMENTUM_STEPS = 2


def _compute(rank: int, world: int) -> dict:
    """One rank's results, computed inside the gloo group set up by `spawn`."""
    results = {name: sliced_loss(factory(sync_dist=True, temperature=0.7),
                                 *_ranking_data(task, n), rank, world)
               for name, n, factory, task in _ranking_configs()}
    # running statistics of global batches: every process holds the same buffers
    loss_fn = softmetrics.SoftAveragePrecisionLoss(task="binary", sync_dist=True,
                                                   momentum=0.6, temperature=0.4,
                                                   ignore_index=-1)
    for step in range(MOMENTUM_STEPS):
        result = sliced_loss(loss_fn, *_ranking_data("binary", 21, seed=step), rank, world,
                             metric=False)
        results[f"momentum-{step}"] = dict(result, running=loss_fn.running_num.clone())
    for name, n, options in _nce_configs():
        q, k, negatives = _nce_data(n)
        rows = rank_rows(rank, world, n)
        ql, kl = q[rows].clone().requires_grad_(), k[rows].clone().requires_grad_()
        loss = _nce_call(ql, kl, negatives, options, gather_distributed=True)
        loss.sum().backward()
        results[f"nce-{name}"] = dict(loss=loss.detach(), grad_q=ql.grad, grad_k=kl.grad,
                                      rows=rows)
    q, k, _ = _nce_data(23)
    rows = rank_rows(rank, world, 23)
    module = softmetrics.InfoNCELoss(temperature=0.5, query_negatives=True, k=2,
                                     gather_distributed=True)
    results["nce-module"] = dict(loss=module(q[rows], k[rows]),
                                 metric=module.metric(q[rows], k[rows]))
    results["local"] = _local_losses(rank, world)
    results.update(siglip_rank_results(rank, world))
    return results


def _local_losses(rank: int, world: int) -> dict:
    """Losses of this rank's rows that are not asked to sync or gather: a ranking loss
    without sync_dist, and the contrastive functions without gather_distributed. Inside a
    process group they must equal the same call outside one."""
    x, y = _ranking_data("binary", 21)
    q, k, _ = _nce_data(22)
    a, b = rank_rows(rank, world, 21), rank_rows(rank, world, 22)
    auroc = softmetrics.SoftAUROCLoss(task="binary", temperature=0.7, ignore_index=-1)
    return {"AUROC": auroc(x[a], y[a]),
            "InfoNCE": F.info_nce(q[b], k[b], temperature=0.5),
            "SigLIP": F.sigmoid_contrastive_loss(q[b], k[b]),
            "retrieval accuracy": F.retrieval_accuracy(q[b], k[b], k=2)}


@pytest.mark.parametrize("world", [2, 4])
def test_gathered_losses_equal_one_process_on_the_whole_batch(world):
    ranks = spawn(_compute, world)
    assert len({r["ap-multilabel-macro-ignore"]["rows"].stop
                - r["ap-multilabel-macro-ignore"]["rows"].start for r in ranks}) > 1

    for name, n, factory, task in _ranking_configs():
        grad = assert_equals_whole_batch([r[name] for r in ranks], factory(temperature=0.7),
                                         *_ranking_data(task, n), world, name)
        assert grad.abs().sum() > 0

    loss_fn = softmetrics.SoftAveragePrecisionLoss(task="binary", momentum=0.6,
                                                   temperature=0.4, ignore_index=-1)
    for step in range(MOMENTUM_STEPS):
        results = [r[f"momentum-{step}"] for r in ranks]
        assert_equals_whole_batch(results, loss_fn, *_ranking_data("binary", 21, seed=step),
                                  world, f"momentum step {step}", metric=False)
        for res in results:
            assert_close_to(res["running"], loss_fn.running_num, f"momentum step {step}",
                            atol=0)

    for name, n, options in _nce_configs():
        q, k, negatives = _nce_data(n)
        q.requires_grad_()
        k.requires_grad_()
        loss = _nce_call(q, k, negatives, options)
        grad_q, grad_k = torch.autograd.grad(loss.sum(), (q, k))
        # "none": each process backpropagates the sum of its own queries' losses, which
        # adds up to the gradient of the global sum (no factor); "mean" and "sum" are one
        # global value on every process (a factor world_size, as for the ranking losses)
        factor = 1 if options.get("reduction") == "none" else world
        for r in ranks:
            res = r[f"nce-{name}"]
            want = loss.detach()[res["rows"]] if loss.ndim else loss.detach()
            assert_close_to(res["loss"], want, name)
            assert_close_to(res["grad_q"] / factor, grad_q[res["rows"]], name)
            assert_close_to(res["grad_k"] / factor, grad_k[res["rows"]], name)

    q, k, _ = _nce_data(23)
    module = softmetrics.InfoNCELoss(temperature=0.5, query_negatives=True, k=2)
    for r in ranks:
        assert_close_to(r["nce-module"]["loss"], module(q, k), "InfoNCELoss")
        assert_close_to(r["nce-module"]["metric"], module.metric(q, k), "InfoNCELoss.metric",
                        atol=1e-12)

    for rank, r in enumerate(ranks):
        for name, want in _local_losses(rank, world).items():
            assert_close_to(r["local"][name], want, f"local {name}")

    assert_siglip_equals_whole_batch(ranks, world)


def _subgroup(rank: int, world: int) -> dict:
    """Ranks 0 and 2 of 3 gather in their own group, whose ranks (0, 1) are not their
    global ranks; rank 1 stays out."""
    import torch.distributed as dist

    group = dist.new_group([0, 2])
    if rank == 1:
        return {}
    member = 0 if rank == 0 else 1
    x, y = _ranking_data("binary", 21)
    auroc = softmetrics.SoftAUROCLoss(task="binary", temperature=0.7, ignore_index=-1,
                                      sync_dist=True, process_group=group)
    results = {"auroc": sliced_loss(auroc, x, y, member, 2)}
    q, k, _ = _nce_data(23)
    rows = rank_rows(member, 2, 23)
    for name, make in (("infonce", lambda: softmetrics.InfoNCELoss(
            temperature=0.3, gather_distributed=True, process_group=group)),
                       ("siglip", lambda: softmetrics.SigLIPLoss(
            gather_distributed=True, process_group=group))):
        ql, kl = q[rows].clone().requires_grad_(), k[rows].clone().requires_grad_()
        loss = make()(ql, kl)
        loss.backward()
        results[name] = dict(loss=loss.detach(), grad_q=ql.grad, grad_k=kl.grad, rows=rows)
    return results


def test_a_subgroup_whose_ranks_are_not_the_global_ones_gathers_with_gradient():
    """`process_group` restricts a loss to a subgroup: the gathers' backward must not mix
    the group's ranks with the global ones (ranks 0 and 2 of 3 are 0 and 1 in theirs)."""
    ranks = [r for r in spawn(_subgroup, 3) if r]
    x, y = _ranking_data("binary", 21)
    auroc = softmetrics.SoftAUROCLoss(task="binary", temperature=0.7, ignore_index=-1)
    assert_equals_whole_batch([r["auroc"] for r in ranks], auroc, x, y, 2, "AUROC")
    q, k, _ = _nce_data(23)
    for name, loss_fn in (("infonce", softmetrics.InfoNCELoss(temperature=0.3)),
                          ("siglip", softmetrics.SigLIPLoss())):
        qa, ka = q.clone().requires_grad_(), k.clone().requires_grad_()
        loss = loss_fn(qa, ka)
        grad_q, grad_k = torch.autograd.grad(loss, (qa, ka))
        for r in ranks:
            res = r[name]
            assert_close_to(res["loss"], loss.detach(), name)
            assert_close_to(res["grad_q"] / 2, grad_q[res["rows"]], name)
            assert_close_to(res["grad_k"] / 2, grad_k[res["rows"]], name)


def test_gathering_is_identity_without_a_process_group():
    x, y = _ranking_data("multilabel", 12)
    a = softmetrics.SoftAveragePrecisionLoss(task="multilabel", num_classes=C,
                                             ignore_index=-1, sync_dist=True)
    b = softmetrics.SoftAveragePrecisionLoss(task="multilabel", num_classes=C,
                                             ignore_index=-1)
    torch.testing.assert_close(a(x, y), b(x, y), atol=0, rtol=0)
    q, k, _ = _nce_data(9)
    torch.testing.assert_close(F.info_nce(q, k, symmetric=True, gather_distributed=True),
                               F.info_nce(q, k, symmetric=True), atol=0, rtol=0)
    torch.testing.assert_close(
        F.retrieval_accuracy(q, k, k=2, gather_distributed=True),
        F.retrieval_accuracy(q, k, k=2), atol=0, rtol=0)


# ---------------------------------------------------------------------------------------
# running statistics of the ranking losses, against a closed form


def _pairwise_stats(metric: str, s: torch.Tensor, y: torch.Tensor, tau: float):
    """(num, den, positives) of one column from the full pair matrix (distinct scores)."""
    pos, neg = y == 1, y == 0
    above = (torch.sigmoid((s[None, :] - s[:, None]) / tau) * neg[None, :]).sum(1)
    n_pos, n_neg = pos.sum().double(), neg.sum().double()
    if metric == "auroc":
        return above[pos].sum(), n_pos * n_neg, n_pos
    if metric == "cap":
        above = above * n_pos / n_neg.clamp_min(1)
    rank = (pos[None, :] & (s[None, :] >= s[:, None])).sum(1).double()
    return (rank / (rank + above))[pos].sum(), n_pos, n_pos


def _mix(m, first, second):
    # the running buffers are float32
    return [m * a.float().double() + (1 - m) * b for a, b in zip(first, second, strict=True)]


@pytest.mark.parametrize("metric, cls", [("auroc", softmetrics.SoftAUROCLoss),
                                         ("ap", softmetrics.SoftAveragePrecisionLoss),
                                         ("cap", softmetrics.SoftCalibratedAveragePrecisionLoss)])
def test_momentum_mixes_running_statistics(metric, cls):
    g = torch.Generator().manual_seed(1)
    tau, m = 0.5, 0.8
    x1, x2 = (torch.randn(16, generator=g, dtype=torch.float64) for _ in range(2))
    y1 = torch.randint(0, 2, (16,), generator=g)
    y2 = torch.randint(0, 2, (16,), generator=g)
    y1[:2], y2[:2] = torch.tensor([0, 1]), torch.tensor([1, 0])
    loss_fn = cls(task="binary", temperature=tau, momentum=m)
    first = loss_fn(x1, y1)
    fn = {"auroc": F.soft_auroc, "ap": F.soft_average_precision,
          "cap": F.soft_calibrated_average_precision}[metric]
    torch.testing.assert_close(first, 1 - fn(x1, y1, task="binary", temperature=tau))
    x2.requires_grad_()
    second = loss_fn(x2, y2)
    s1 = _pairwise_stats(metric, x1, y1, tau)

    def reference(x):
        num, den, _ = _mix(m, s1, _pairwise_stats(metric, x, y2, tau))
        return num / den if metric != "auroc" else 1 - num / den

    want = 1 - reference(x2.detach().clone().requires_grad_())
    torch.testing.assert_close(second.detach(), want.detach())
    # the mixed value differs from both batches' own values
    own = 1 - fn(x2.detach(), y2, task="binary", temperature=tau)
    assert abs(float(second.detach()) - float(own)) > 1e-4
    (grad,) = torch.autograd.grad(second, x2)
    xr = x2.detach().clone().requires_grad_()
    (ref_grad,) = torch.autograd.grad(1 - reference(xr), xr)
    torch.testing.assert_close(grad, ref_grad)
    assert grad.abs().sum() > 0
    # the buffers hold the mixed statistics
    mixed = _mix(m, s1, _pairwise_stats(metric, x2.detach(), y2, tau))
    for key, value in zip(("num", "den", "pos"), mixed, strict=True):
        torch.testing.assert_close(getattr(loss_fn, f"running_{key}")[0], value.float())


def test_momentum_keeps_a_class_absent_from_the_batch():
    g = torch.Generator().manual_seed(2)
    tau, m = 0.3, 0.5
    x1, x2 = (torch.randn(12, C, generator=g, dtype=torch.float64) for _ in range(2))
    y1, y2 = (torch.randint(0, 2, (12, C), generator=g) for _ in range(2))
    y1[0], y2[0] = 1, 0
    y2[:, 2] = 0  # class 2: no positive in the second batch
    loss_fn = softmetrics.SoftAveragePrecisionLoss(task="multilabel", num_classes=C,
                                                   average="none", temperature=tau,
                                                   momentum=m)
    loss_fn(x1, y1)
    got = 1 - loss_fn(x2, y2)
    for c in range(C):
        num, den, _ = _mix(m, _pairwise_stats("ap", x1[:, c], y1[:, c], tau),
                           _pairwise_stats("ap", x2[:, c], y2[:, c], tau))
        torch.testing.assert_close(got[c], num / den)
    # class 2 keeps its first-batch AP; without momentum it would be undefined (0)
    torch.testing.assert_close(got[2], F.soft_average_precision(
        x1[:, 2], y1[:, 2], task="binary", temperature=tau))
    # macro and weighted averages read the mixed statistics too
    macro = softmetrics.SoftAveragePrecisionLoss(task="multilabel", num_classes=C,
                                                 temperature=tau, momentum=m)
    weighted = softmetrics.SoftAveragePrecisionLoss(task="multilabel", num_classes=C,
                                                    average="weighted", temperature=tau,
                                                    momentum=m)
    for fn in (macro, weighted):
        fn(x1, y1)
    torch.testing.assert_close(1 - macro(x2, y2), got.mean())
    pos = weighted.running_pos.double() * m + (1 - m) * y2.sum(0).double()
    torch.testing.assert_close(1 - weighted(x2, y2), (got * pos).sum() / pos.sum())


def test_momentum_buffers_save_move_and_update_in_training_only():
    x, y = _ranking_data("multiclass", 16)
    loss_fn = softmetrics.SoftAUROCLoss(task="multiclass", num_classes=C + 1,
                                        ignore_index=-1, momentum=0.9).eval()
    loss_fn(x, y)
    assert not bool(loss_fn.running_initialized)
    assert loss_fn.running_den.abs().sum() == 0
    loss_fn.train()
    loss_fn(x, y)
    assert bool(loss_fn.running_initialized)
    assert loss_fn.running_num.shape == (C + 1,)
    state = loss_fn.state_dict()
    assert set(state) >= {"running_num", "running_den", "running_pos", "running_initialized"}
    fresh = softmetrics.SoftAUROCLoss(task="multiclass", num_classes=C + 1, ignore_index=-1,
                                      momentum=0.9)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.running_num, loss_fn.running_num)
    assert fresh.to(torch.float64).running_den.dtype == torch.float64
    micro = softmetrics.SoftAUROCLoss(task="multiclass", num_classes=C + 1, average="micro",
                                      momentum=0.9)
    assert micro.running_num.shape == (1,)
    # .metric is the exact metric of the given batch, never the running one
    torch.testing.assert_close(loss_fn.metric(x, y), F.soft_auroc(
        x, y, task="multiclass", num_classes=C + 1, ignore_index=-1, temperature=0))
    assert "momentum=0.9" in repr(loss_fn)


def test_momentum_errors():
    with pytest.raises(ValueError, match=r"SoftAUROCLoss: expected `momentum` to be >= 0 "
                                         r"and < 1"):
        softmetrics.SoftAUROCLoss(task="binary", momentum=1.0)
    with pytest.raises(ValueError, match=r"SoftAveragePrecisionLoss: expected `momentum`"):
        softmetrics.SoftAveragePrecisionLoss(task="binary", momentum=-0.1)
