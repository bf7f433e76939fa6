"""Set-level losses across processes (gloo, spawned here) and running statistics."""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import torch
import torch.distributed as dist

import softmetrics
from softmetrics import distributed, functional as F

from .spawn import assert_equals_whole_batch, sliced_loss, spawn

N, C = 24, 4


def _configs():
    """(name, loss factory, task) for every set-level classification loss shape."""
    return [
        ("f1-macro", lambda **kw: softmetrics.SoftF1Loss(task="multiclass", num_classes=C,
                                                         ignore_index=-1, **kw), "multiclass"),
        ("mcc", lambda **kw: softmetrics.SoftMCCLoss(task="multiclass", num_classes=C,
                                                     ignore_index=-1, **kw), "multiclass"),
        ("jaccard-weighted-ignore", lambda **kw: softmetrics.SoftJaccardLoss(
            task="multiclass", num_classes=C, average="weighted", ignore_index=-1, **kw),
         "multiclass"),
        ("top2", lambda **kw: softmetrics.SoftTopKAccuracyLoss(num_classes=C, k=2,
                                                               average="macro",
                                                               ignore_index=-1, **kw),
         "multiclass"),
        ("binary-f2", lambda **kw: softmetrics.SoftFBetaLoss(task="binary", beta=2.0, **kw),
         "binary"),
        ("multilabel-acc", lambda **kw: softmetrics.SoftAccuracyLoss(
            task="multilabel", num_classes=C, average="macro", **kw), "multilabel"),
        ("multilabel-mcc-micro", lambda **kw: softmetrics.SoftMCCLoss(
            task="multilabel", num_classes=C, **kw), "multilabel"),
        ("kappa-quadratic", lambda **kw: softmetrics.SoftCohenKappaLoss(
            task="multiclass", num_classes=C, weights="quadratic", ignore_index=-1, **kw),
         "multiclass"),
        ("kappa", lambda **kw: softmetrics.SoftCohenKappaLoss(
            task="multiclass", num_classes=C, ignore_index=-1, **kw), "multiclass"),
        ("kappa-binary", lambda **kw: softmetrics.SoftCohenKappaLoss(task="binary", **kw),
         "binary"),
    ]


def _data(task: str):
    g = torch.Generator().manual_seed(7)
    if task == "binary":
        x = torch.randn(N, generator=g, dtype=torch.float64)
        y = torch.randint(0, 2, (N,), generator=g)
    elif task == "multiclass":
        x = torch.randn(N, C, generator=g, dtype=torch.float64)
        y = torch.randint(0, C, (N,), generator=g)
        y[3] = -1
    else:
        x = torch.randn(N, C, generator=g, dtype=torch.float64)
        y = torch.randint(0, 2, (N, C), generator=g)
    return x, y


def _compute(rank: int, world: int) -> dict:
    """One rank's results, computed inside the gloo group set up by `spawn`."""
    return {name: sliced_loss(factory(sync_dist=True, temperature=0.7), *_data(task), rank,
                              world)
            for name, factory, task in _configs()}


@pytest.mark.parametrize("world", [2, 4])
def test_sync_dist_equals_one_process_on_the_whole_batch(world):
    ranks = spawn(_compute, world)
    for name, factory, task in _configs():
        assert_equals_whole_batch([r[name] for r in ranks], factory(temperature=0.7),
                                  *_data(task), world, name)


def test_sync_dist_is_identity_without_a_process_group():
    x, y = _data("multiclass")
    a = softmetrics.SoftF1Loss(task="multiclass", num_classes=C, ignore_index=-1,
                               sync_dist=True)
    b = softmetrics.SoftF1Loss(task="multiclass", num_classes=C, ignore_index=-1)
    torch.testing.assert_close(a(x, y), b(x, y))


@pytest.mark.parametrize("factory", [
    lambda: softmetrics.SoftF1Loss(task="multiclass", num_classes=C, ignore_index=-1,
                                   sync_dist=True),
    lambda: softmetrics.SoftMCCLoss(task="multilabel", num_classes=C, sync_dist=True),
    lambda: softmetrics.SoftCohenKappaLoss(task="multiclass", num_classes=C, ignore_index=-1,
                                           weights="quadratic", sync_dist=True),
], ids=["F1 with ignore_index", "multilabel MCC", "quadratic kappa"])
def test_the_counts_cross_processes_in_one_collective(factory, monkeypatch):
    """Each collective is a round trip between the processes (tens of microseconds with
    NCCL, more across nodes): the counts of a call, of several fields, are summed in one
    all-reduce, here counted with a stand-in that sums over one process."""
    calls = []

    def one_process_sum(tensor, process_group=None):
        calls.append(tuple(tensor.shape))
        return tensor.clone()

    loss = factory()
    x, y = _data(loss.options["task"])
    want = factory()(x, y)
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    monkeypatch.setattr(distributed, "all_reduce_sum", one_process_sum)
    loss = factory()
    torch.testing.assert_close(loss(x, y), want)
    assert len(calls) == 1, calls
    calls.clear()
    loss.metric(x, y)
    assert len(calls) == 1, calls


def test_sync_dist_rejects_samplewise():
    with pytest.raises(ValueError, match=r"SoftF1Loss: expected `sync_dist` to be False "
                                         r"with multidim_average='samplewise'"):
        softmetrics.SoftF1Loss(task="binary", multidim_average="samplewise", sync_dist=True)


# ---------------------------------------------------------------------------------------
# batch sizes of every process


def _sizes(rank: int, world: int) -> dict:
    # the data's device may be one gloo cannot gather on (here meta, as CUDA would be for
    # an NCCL-less group): gloo exchanges the sizes in host memory instead
    return dict(sizes=distributed.gather_sizes(3 + rank, device="meta"))


def _hangs_at_shutdown(rank: int, world: int) -> dict:
    # as torch 2.1's gloo group now and then does, in its destructor
    dist.destroy_process_group = lambda: time.sleep(3600)
    return dict(rank=rank)


def test_children_that_hang_after_writing_their_results_are_killed():
    """A child that hangs in its shut-down after every rank wrote its result does not hang
    the test: it is killed after the grace period, and the results come back."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        ranks = pool.submit(spawn, _hangs_at_shutdown, 2, grace_s=1.0).result(timeout=120)
    finally:
        pool.shutdown(wait=False)
    assert ranks == [dict(rank=0), dict(rank=1)]


def test_sizes_are_exchanged_in_host_memory_where_the_backend_allows():
    ranks = spawn(_sizes, 2)
    assert [r["sizes"] for r in ranks] == [[3, 4], [3, 4]]


def _ring_shifts(rank: int, world: int) -> dict:
    # two shifts in flight at once, of two tensors each (different shapes and dtypes)
    ring = distributed.Ring(torch.device("cpu"))
    first = ring.shift([torch.full((2,), float(rank)), torch.full((3, 1), 10 + rank)],
                       [((2,), torch.float32), ((3, 1), torch.int64)])
    second = ring.shift([torch.full((1,), 100.0 + rank, dtype=torch.float64)],
                        [((1,), torch.float64)], tag=2)
    return dict(first=first(), second=second())


def test_ring_shift_passes_each_tensor_to_the_next_process():
    world = 3
    for rank, got in enumerate(spawn(_ring_shifts, world)):
        prev = (rank - 1) % world
        a, b = got["first"]
        assert torch.equal(a, torch.full((2,), float(prev)))
        assert torch.equal(b, torch.full((3, 1), 10 + prev))
        (c,) = got["second"]
        assert torch.equal(c, torch.full((1,), 100.0 + prev, dtype=torch.float64))


@pytest.mark.parametrize("backend, cpu", [
    ("gloo", True), ("nccl", False), ("cpu:gloo,cuda:nccl", True), ("cuda:nccl", False),
    ("mpi", True),
])
def test_backends_that_exchange_cpu_tensors(backend, cpu, monkeypatch):
    monkeypatch.setattr(distributed.dist, "get_backend", lambda group=None: backend)
    assert distributed._handles_cpu_tensors(None) is cpu


@pytest.mark.parametrize("backend, device, travels_on", [
    ("gloo", "cuda", "cpu"), ("mpi", "cuda", "cpu"), ("nccl", "cuda", "cuda"),
    ("cpu:gloo,cuda:nccl", "cuda", "cuda"), ("cpu:gloo", "cuda", "cpu"),
    ("gloo", "cpu", "cpu"), ("xccl", "xpu", "xpu"),
])
def test_point_to_point_messages_travel_where_the_backend_sends(backend, device, travels_on,
                                                                monkeypatch):
    # gloo and MPI send CPU tensors only: the ring of SigLIP passes CUDA tensors through
    # host memory there, and sends them as they are with NCCL
    monkeypatch.setattr(distributed.dist, "get_backend", lambda group=None: backend)
    assert distributed._p2p_device(torch.device(device), None) == torch.device(travels_on)


# ---------------------------------------------------------------------------------------
# running statistics


def _f1_from_counts(tp, pred, support):
    return (2 * tp / (pred + support)).mean()


def _counts(x, y):
    s = F.soft_stat_scores(x, y, task="multiclass", num_classes=C)
    return s.tp, s.tp + s.fp, s.tp + s.fn


def test_momentum_mixes_running_statistics():
    g = torch.Generator().manual_seed(0)
    x1, x2 = (torch.randn(16, C, generator=g, dtype=torch.float64) for _ in range(2))
    y1, y2 = (torch.randint(0, C, (16,), generator=g) for _ in range(2))
    m = 0.9
    loss_fn = softmetrics.SoftF1Loss(task="multiclass", num_classes=C, momentum=m)
    first = loss_fn(x1, y1)
    torch.testing.assert_close(first, 1 - F.soft_f1_score(x1, y1, task="multiclass",
                                                          num_classes=C))
    x2.requires_grad_()
    second = loss_fn(x2, y2)
    c1, c2 = _counts(x1, y1), _counts(x2.detach(), y2)
    mixed = [m * a + (1 - m) * b for a, b in zip(c1, c2, strict=True)]
    torch.testing.assert_close(second.detach(), 1 - _f1_from_counts(*mixed))
    # the gradient flows through the batch part only, scaled by (1 - m)
    (grad,) = torch.autograd.grad(second, x2)
    x2b = x2.detach().clone().requires_grad_()
    tp, pred, support = _counts(x2b, y2)
    ref = 1 - _f1_from_counts(*(m * a + (1 - m) * b for a, b in
                                zip(c1, (tp, pred, support), strict=True)))
    (want,) = torch.autograd.grad(ref, x2b)
    torch.testing.assert_close(grad, want)
    assert grad.abs().sum() > 0
    # the running statistics are the mixed ones, in buffers that save and move
    state = loss_fn.state_dict()
    assert set(state) >= {"running_tp", "running_pred", "running_support", "running_total",
                          "running_initialized"}
    torch.testing.assert_close(state["running_tp"][0], mixed[0].float())
    moved = loss_fn.to(torch.float64)
    assert moved.running_tp.dtype == torch.float64
    fresh = softmetrics.SoftF1Loss(task="multiclass", num_classes=C, momentum=m)
    fresh.load_state_dict(state)
    assert bool(fresh.running_initialized)


def test_momentum_zero_is_the_batch_alone():
    """`momentum=0` keeps running statistics (they save and load) but every step's loss
    and gradient are those of its batch alone."""
    g = torch.Generator().manual_seed(1)
    loss_fn = softmetrics.SoftF1Loss(task="multiclass", num_classes=C, momentum=0.0)
    plain = softmetrics.SoftF1Loss(task="multiclass", num_classes=C)
    for _ in range(3):
        x = torch.randn(16, C, generator=g, dtype=torch.float64, requires_grad=True)
        y = torch.randint(0, C, (16,), generator=g)
        got, want = loss_fn(x, y), plain(x, y)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(*(torch.autograd.grad(v, x) for v in (got, want)))
    assert bool(loss_fn.running_initialized)


def test_momentum_eval_mode_does_not_update():
    loss_fn = softmetrics.SoftMCCLoss(task="binary", momentum=0.5).eval()
    x, y = torch.randn(8), torch.randint(0, 2, (8,))
    loss_fn(x, y)
    assert not bool(loss_fn.running_initialized)
    assert loss_fn.running_tp.abs().sum() == 0
    loss_fn.train()
    loss_fn(x, y)
    assert bool(loss_fn.running_initialized)
    # .metric is the exact metric of the given batch, never the running one
    torch.testing.assert_close(loss_fn.metric(x, y),
                               F.soft_matthews_corrcoef(x, y, task="binary", temperature=0))


def _empty_like(x, y, ignore):
    """A batch with no entries: no samples, or (`ignore`) every target ignored."""
    return (x, torch.full_like(y, -1)) if ignore else (x[:0], y[:0])


@pytest.mark.parametrize("ignore", [False, True], ids=["no samples", "all ignored"])
@pytest.mark.parametrize("factory", [
    lambda **kw: softmetrics.SoftPrecisionLoss(task="multiclass", num_classes=4, **kw),
    lambda **kw: softmetrics.SoftF1Loss(task="multiclass", num_classes=4, **kw),
    lambda **kw: softmetrics.SoftMCCLoss(task="multiclass", num_classes=4, average="macro",
                                         **kw),
    lambda **kw: softmetrics.SoftCohenKappaLoss(task="multiclass", num_classes=4, **kw),
    lambda **kw: softmetrics.SoftAveragePrecisionLoss(task="multiclass", num_classes=4,
                                                      **kw),
    lambda **kw: softmetrics.SoftTopKAccuracyLoss(num_classes=4, k=2, **kw),
], ids=["precision", "F1", "MCC", "kappa", "AP", "top-2 accuracy"])
def test_a_batch_without_entries_leaves_the_running_statistics_alone(factory, ignore):
    """An empty batch, or one whose every entry is ignored, holds no statistics: mixing it
    in would start the running ones at 0 (the next batch then weighed 1 - m against
    nothing) or scale them by m. It changes no buffer, the next batches give what they
    give without it, and after the first update its value is the running statistics'."""
    g = torch.Generator().manual_seed(5)
    x1, x2 = (torch.randn(12, 4, generator=g, dtype=torch.float64) for _ in range(2))
    y1 = torch.tensor([0, 0, 1, 1, 2, 2] * 2)  # class 3 absent
    y2 = torch.randint(0, 4, (12,), generator=g)
    kw = dict(momentum=0.9, ignore_index=-1)
    plain, interrupted = factory(**kw), factory(**kw)
    interrupted(*_empty_like(x1, y1, ignore))
    assert not bool(interrupted.running_initialized)
    assert all(not b.any() for n, b in interrupted.named_buffers() if n.startswith("running"))
    for x, y in ((x1, y1), (x2, y2)):
        mixed = interrupted(x, y)
        torch.testing.assert_close(mixed, plain(x, y))
    assert bool(interrupted.running_initialized)  # the batches with entries were mixed in
    assert not torch.allclose(mixed, factory(ignore_index=-1)(x2, y2))  # not the batch alone
    before = {n: b.clone() for n, b in interrupted.named_buffers()}
    value = interrupted(*_empty_like(x2, y2, ignore))
    for n, b in interrupted.named_buffers():
        torch.testing.assert_close(b, before[n], rtol=0, atol=0)
    torch.testing.assert_close(interrupted(x1, y1), plain(x1, y1))
    assert bool(torch.isfinite(value))


def test_momentum_errors():
    with pytest.raises(ValueError, match=r"SoftF1Loss: expected `momentum` to be >= 0 and < 1"):
        softmetrics.SoftF1Loss(task="binary", momentum=1.0)
    with pytest.raises(ValueError, match=r"SoftF1Loss: expected `momentum` to be None with "
                                         r"multidim_average='samplewise'"):
        softmetrics.SoftF1Loss(task="binary", multidim_average="samplewise", momentum=0.5)


@pytest.mark.parametrize("make", [
    lambda: softmetrics.SoftF1Loss(task="multiclass", num_classes=3, momentum=0.5),
    lambda: softmetrics.SoftAUROCLoss(task="binary", momentum=0.5,
                                      temperature=torch.tensor(1.0)),
], ids=["SoftF1Loss", "SoftAUROCLoss"])
def test_running_statistics_stay_float32_under_half(make):
    """`.half()` / `.bfloat16()` on a model with the loss inside keep the running buffers in
    float32 with their values (counts above float16's largest, 65504); `.double()` widens
    them; the loss then runs on half-precision inputs. A buffer that is not a statistic
    (a tensor temperature) is converted as usual."""
    g = torch.Generator().manual_seed(0)
    loss_fn = make()
    if isinstance(loss_fn, softmetrics.SoftAUROCLoss):
        # the AUROC statistics count (positive, negative) pairs: ~512 x 512 of 1024 scores
        x, y = torch.randn(1024, generator=g), torch.randint(0, 2, (1024,), generator=g)
    else:
        # F1 counts entries: the true negatives of a class of 3 pass 65504
        x, y = torch.randn(100000, 3, generator=g), torch.randint(0, 3, (100000,), generator=g)
    loss_fn(x, y)
    before = {k: v.clone() for k, v in loss_fn.state_dict().items() if k.startswith("running_")}
    assert max(v.max().item() for v in before.values()) > 65504
    for convert in (loss_fn.half, loss_fn.bfloat16, lambda: loss_fn.to(torch.float16)):
        convert()
        for key, value in before.items():
            buffer = loss_fn.state_dict()[key]
            assert buffer.dtype == value.dtype
            torch.testing.assert_close(buffer, value, rtol=0, atol=0)
        others = [v for k, v in loss_fn.state_dict().items() if not k.startswith("running_")]
        assert all(v.dtype in (torch.float16, torch.bfloat16) for v in others)
    out = loss_fn(x[:1000].half(), y[:1000])
    assert torch.isfinite(out)
    loss_fn.double()
    assert all(v.dtype in (torch.float64, torch.bool) for k, v in loss_fn.state_dict().items()
               if k.startswith("running_"))
