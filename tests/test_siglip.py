"""Tests of the sigmoid contrastive loss (SigLIP): values and gradients against naive
references written here, tiles, the learnable and bounded logit scale and bias, errors, and
the loss across processes against one process on the whole batch (the gloo processes are
spawned once for every family, in `test_distributed_families`).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from softmetrics import SigLIPLoss, _tuning
from softmetrics.functional import _siglip_tiles, sigmoid_contrastive_loss

from .seeded import seeded_randn
from .spawn import assert_close_to, rank_rows

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64,
           requires_grad: bool = False) -> torch.Tensor:
    return seeded_randn(*shape, seed=seed, dtype=dtype, requires_grad=requires_grad)


# --------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------


def naive_siglip(q, k, t, b, normalize=True, reduction="mean"):
    """The paper's formulation on the full matrix: labels z = 2 I - 1, the sum of
    -log sigmoid(z * logits) over every pair, divided by the batch size."""
    if normalize:
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = t * q @ k.T + b
    z = 2 * torch.eye(q.shape[0], dtype=logits.dtype) - 1
    per_query = -F.logsigmoid(z * logits).sum(dim=1)
    if reduction == "none":
        return per_query
    return per_query.sum() / (q.shape[0] if reduction == "mean" else 1)


def loop_siglip(q, k, t, b):
    """An explicit double loop over the pairs, as binary cross-entropy per pair."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    total = 0.0
    for i in range(q.shape[0]):
        for j in range(k.shape[0]):
            p = torch.sigmoid(t * torch.dot(q[i], k[j]) + b)
            total = total - torch.log(p if i == j else 1 - p)
    return total / q.shape[0]


# --------------------------------------------------------------------------------------
# values and gradients
# --------------------------------------------------------------------------------------


def test_closed_form():
    # orthonormal pairs, t = 1, b = 0: logits are I, so each query pays softplus(-1) for
    # its positive and softplus(0) = log 2 for its one negative
    q = torch.eye(2, dtype=torch.float64)
    want = math.log1p(math.exp(-1.0)) + math.log(2.0)
    for chunk in (None, 1):
        got = sigmoid_contrastive_loss(q, q.clone(), logit_scale=1.0, logit_bias=0.0,
                                       chunk_size=chunk)
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_matches_the_explicit_loop():
    q, k = _randn(6, 4, seed=0), _randn(6, 4, seed=1)
    torch.testing.assert_close(sigmoid_contrastive_loss(q, k, logit_scale=3.0, logit_bias=-1.5),
                               loop_siglip(q, k, 3.0, -1.5))


@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 5, 12, 13, 100])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("rows", [None, 4])
def test_values_and_gradients_match_the_naive_loss(chunk, normalize, reduction, rows,
                                                   monkeypatch):
    """N = 13 is split unevenly by every chunk in 2..12. `rows=4` makes tiles of 4 queries
    (13 = 4 + 4 + 4 + 1): a positive pair then lies in a later row tile too, and its logit
    must be found at the tile's own offset (by default all 13 queries are one tile)."""
    if rows is not None:
        monkeypatch.setattr(_tuning, "INFONCE_CPU_TILE_ELEMENTS", rows * 6)  # D = 6
    q = _randn(13, 6, seed=2, requires_grad=True)
    k = (q.detach() + 0.7 * _randn(13, 6, seed=3)).requires_grad_()
    t = torch.tensor(4.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-2.5, dtype=torch.float64, requires_grad=True)
    got = sigmoid_contrastive_loss(q, k, logit_scale=t, logit_bias=b, normalize=normalize,
                                   reduction=reduction, chunk_size=chunk)
    want = naive_siglip(q, k, t, b, normalize, reduction)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)
    weights = torch.linspace(0.5, 1.5, 13, dtype=torch.float64) if reduction == "none" else 1
    for a, c in zip(torch.autograd.grad((got * weights).sum(), (q, k, t, b)),
                    torch.autograd.grad((want * weights).sum(), (q, k, t, b)), strict=True):
        torch.testing.assert_close(a, c, atol=1e-12, rtol=1e-10)


def test_float32_tiles_match_the_naive_loss():
    q, k = _randn(300, 16, seed=4, dtype=torch.float32), _randn(300, 16, seed=5,
                                                                 dtype=torch.float32)
    q.requires_grad_()
    got = sigmoid_contrastive_loss(q, k, chunk_size=37)
    want = naive_siglip(q, k, 10.0, -10.0)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(*(torch.autograd.grad(x, q)[0] for x in (got, want)),
                               atol=1e-6, rtol=1e-4)


@given(n=st.integers(1, 9), chunk=st.integers(1, 10), seed=st.integers(0, 2**16),
       normalize=st.booleans())
def test_tiled_equals_untiled(n, chunk, seed, normalize):
    q, k = _randn(n, 3, seed=seed), _randn(n, 3, seed=seed + 1)
    options = dict(logit_scale=2.0, logit_bias=-1.0, normalize=normalize, reduction="none")
    torch.testing.assert_close(sigmoid_contrastive_loss(q, k, chunk_size=chunk, **options),
                               sigmoid_contrastive_loss(q, k, **options))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_whole_matrix_keeps_the_small_terms_the_tiles_keep(dtype):
    """Well separated pairs at the largest scale: the positive's own term is ~110, the
    negatives' ~1e-6. Adding the positive into the row sum and taking it out again lost
    every term below its rounding (8e-40 for 1.7e-6 in float32, 5.5e-9 off in float64);
    each entry's term is now its own, as in the tiles. An infinite bias gives inf (and 0
    for one pair, the positive alone), not inf - inf."""
    gram = torch.full((3, 3), -0.04, dtype=torch.float64).fill_diagonal_(1.0)
    q = torch.linalg.cholesky(gram).to(dtype)  # unit rows: cos 1 with itself, else -0.04
    kw = dict(logit_scale=100.0, logit_bias=-10.0, reduction="none")
    whole = sigmoid_contrastive_loss(q, q, **kw)
    tiles = sigmoid_contrastive_loss(q, q, chunk_size=1, **kw)
    logits = 100.0 * gram - 10.0
    signs = 2 * torch.eye(3, dtype=torch.float64) - 1
    want = -F.logsigmoid(signs * logits).sum(1)
    torch.testing.assert_close(whole.double(), want, rtol=1e-6 if dtype == torch.float32
                               else 1e-12, atol=0)
    torch.testing.assert_close(whole, tiles, rtol=1e-6, atol=0)
    x = torch.randn(1, 4)
    assert float(sigmoid_contrastive_loss(x, x, logit_bias=float("inf"))) == 0.0
    x = torch.randn(3, 4)
    assert float(sigmoid_contrastive_loss(x, x, logit_bias=float("inf"))) == math.inf


@pytest.mark.parametrize("chunk", [None, 3])
def test_gradcheck(chunk):
    q, k = _randn(7, 4, seed=6, requires_grad=True), _randn(7, 4, seed=7, requires_grad=True)
    t = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-1.0, dtype=torch.float64, requires_grad=True)

    def fn(q, k, t, b):
        return sigmoid_contrastive_loss(q, k, logit_scale=t, logit_bias=b, chunk_size=chunk,
                                        reduction="none")

    assert torch.autograd.gradcheck(fn, (q, k, t, b))
    assert torch.autograd.gradgradcheck(fn, (q, k, t, b))


def test_tiles_keep_no_n_by_n_matrix():
    """What autograd keeps for the backward pass of the tiled loss is O(N * D), not N x N."""
    n, d = 512, 8
    q, k = _randn(n, d, seed=8, requires_grad=True), _randn(n, d, seed=9, requires_grad=True)
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        tiled = sigmoid_contrastive_loss(q, k, chunk_size=64)
    assert max(sizes) <= n * d
    sizes.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        sigmoid_contrastive_loss(q, k, chunk_size=None)
    assert max(sizes) >= n * n  # the full matrix, which the check above would catch
    tiled.backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(k.grad).all()


def test_extreme_inputs_give_finite_values_and_gradients():
    q = (1e4 * _randn(20, 5, seed=10, dtype=torch.float32)).requires_grad_()
    k = (1e4 * _randn(20, 5, seed=11, dtype=torch.float32)).requires_grad_()
    for options in (dict(normalize=False, logit_scale=1.0, logit_bias=0.0),
                    dict(logit_scale=100.0, logit_bias=-1e4),
                    dict(logit_scale=1e-3, logit_bias=1e4)):
        for chunk in (None, 7):
            loss = sigmoid_contrastive_loss(q, k, chunk_size=chunk, **options)
            grads = torch.autograd.grad(loss, (q, k))
            assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)


def test_half_inputs_are_computed_in_float32():
    q, k = _randn(64, 8, seed=12, dtype=torch.float32), _randn(64, 8, seed=13,
                                                                dtype=torch.float32)
    for chunk in (None, 10):
        half = q.half().requires_grad_()
        loss = sigmoid_contrastive_loss(half, k.half(), chunk_size=chunk)
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss, sigmoid_contrastive_loss(half.float(), k.half().float()))
        (grad,) = torch.autograd.grad(loss, half)
        assert grad.dtype == torch.float16 and torch.isfinite(grad).all()


def test_reductions_agree():
    q, k = _randn(9, 3, seed=14), _randn(9, 3, seed=15)
    none = sigmoid_contrastive_loss(q, k, reduction="none", chunk_size=4)
    torch.testing.assert_close(none.sum(), sigmoid_contrastive_loss(q, k, reduction="sum"))
    torch.testing.assert_close(none.mean(), sigmoid_contrastive_loss(q, k))


# --------------------------------------------------------------------------------------
# the Module: learnable, bounded logit scale and bias
# --------------------------------------------------------------------------------------


def test_module_initialisation_and_equality_with_the_function():
    loss_fn = SigLIPLoss(chunk_size=4)
    # the paper's initialisation: t = exp(log 10), b = -10
    torch.testing.assert_close(loss_fn.log_logit_scale.detach(), torch.tensor(math.log(10.0)))
    torch.testing.assert_close(loss_fn.logit_bias.detach(), torch.tensor(-10.0))
    q, k = _randn(10, 4, seed=16, dtype=torch.float32), _randn(10, 4, seed=17,
                                                                dtype=torch.float32)
    torch.testing.assert_close(loss_fn(q, k), sigmoid_contrastive_loss(q, k))
    fixed = SigLIPLoss(logit_scale=3.0, logit_bias=-2.0, learnable=False, reduction="none")
    assert not list(fixed.parameters())
    torch.testing.assert_close(fixed(q, k), naive_siglip(q, k, 3.0, -2.0, reduction="none"))
    assert "learnable=True" in repr(loss_fn) and "logit_scale=10.0" in repr(loss_fn)


@pytest.mark.parametrize("chunk", [None, 3])
def test_learnable_scale_and_bias_get_the_naive_gradients(chunk):
    loss_fn = SigLIPLoss(logit_scale=5.0, logit_bias=-3.0, chunk_size=chunk).double()
    q, k = _randn(8, 4, seed=18), _randn(8, 4, seed=19)
    loss_fn(q, k).backward()
    log_t = torch.tensor(math.log(5.0), dtype=torch.float64, requires_grad=True)
    b = torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)
    naive_siglip(q, k, log_t.exp(), b).backward()
    torch.testing.assert_close(loss_fn.log_logit_scale.grad, log_t.grad)
    torch.testing.assert_close(loss_fn.logit_bias.grad, b.grad)
    assert loss_fn.log_logit_scale.grad != 0 and loss_fn.logit_bias.grad != 0


def test_learned_scale_is_bounded_as_clip_bounds_its_logit_scale():
    loss_fn = SigLIPLoss(max_logit_scale=20.0)
    q, k = _randn(8, 4, seed=20, dtype=torch.float32), _randn(8, 4, seed=21,
                                                               dtype=torch.float32)
    with torch.no_grad():
        loss_fn.log_logit_scale.fill_(math.log(1e3))  # past the bound
    torch.testing.assert_close(loss_fn.logit_scale.detach(), torch.tensor(20.0))
    loss = loss_fn(q, k)
    torch.testing.assert_close(loss.detach(), sigmoid_contrastive_loss(q, k, logit_scale=20.0))
    loss.backward()
    assert loss_fn.log_logit_scale.grad == 0  # at the bound: no gradient, as CLIP's clamp
    assert loss_fn.logit_bias.grad != 0
    with pytest.raises(ValueError, match=r"SigLIPLoss: expected `logit_scale` to be <= "
                                         r"max_logit_scale = 20"):
        SigLIPLoss(logit_scale=30.0, max_logit_scale=20.0)
    SigLIPLoss(logit_scale=30.0, max_logit_scale=20.0, learnable=False)  # constants: as given


def test_module_metric_is_the_retrieval_accuracy():
    q = torch.eye(4)
    k = torch.eye(4)[[0, 1, 3, 2]]
    assert SigLIPLoss().metric(q, k) == 0.5
    # queries 2 and 3: one key above the positive, two tied with it (a third of the top 2)
    assert SigLIPLoss(k=2, reduction="none").metric(q, k).tolist() == pytest.approx(
        [1.0, 1.0, 1 / 3, 1 / 3])


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(logit_scale=0.0), ValueError, r"expected `logit_scale` to be > 0"),
    (dict(logit_scale=-1.0), ValueError, r"expected `logit_scale` to be > 0"),
    (dict(logit_scale=torch.tensor(-1.0)), ValueError,
     r"expected `logit_scale` to be finite and > 0"),
    (dict(logit_scale="10"), TypeError, r"expected `logit_scale` to be a real number"),
    (dict(logit_bias=float("nan")), ValueError, r"expected `logit_bias` to be a number, not"),
    (dict(logit_bias=torch.tensor([1.0, 2.0])), ValueError, r"expected `logit_bias` to be a "
                                                            r"number or a one-element"),
    (dict(reduction="avg"), ValueError, r"expected `reduction` to be one of"),
    (dict(chunk_size=0), ValueError, r"expected `chunk_size` to be an int >= 1"),
    (dict(gather_distributed="all"), ValueError,
     r"expected `gather_distributed` to be one of False, True, 'ring', got 'all'"),
    (dict(gather_distributed="Ring"), ValueError,
     r"expected `gather_distributed` to be one of False, True, 'ring', got 'Ring'"),
    (dict(gather_distributed=None), ValueError,
     r"expected `gather_distributed` to be one of False, True, 'ring', got None"),
])
def test_errors(kwargs, error, match):
    q = torch.randn(3, 2)
    with pytest.raises(error, match=r"^sigmoid_contrastive_loss: " + match):
        sigmoid_contrastive_loss(q, q, **kwargs)


def test_input_errors():
    with pytest.raises(ValueError, match=r"expected `key` to be of shape \(3, 2\)"):
        sigmoid_contrastive_loss(torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"expected `query` to be finite"):
        sigmoid_contrastive_loss(torch.tensor([[float("nan"), 1.0]]), torch.ones(1, 2))
    with pytest.raises(TypeError, match=r"SigLIPLoss: expected `logit_scale` to be a number"):
        SigLIPLoss(logit_scale=torch.tensor(10.0))
    with pytest.raises(TypeError, match=r"SigLIPLoss: expected `chunk_size`"):
        SigLIPLoss(chunk_size=2.5)
    with pytest.raises(ValueError, match=r"SigLIPLoss: expected `gather_distributed` to be "
                                         r"one of False, True, 'ring', got 'rings'"):
        SigLIPLoss(gather_distributed="rings")
    nan = torch.tensor([[float("nan"), 1.0], [0.0, 1.0]])
    assert sigmoid_contrastive_loss(nan, torch.ones(2, 2), validate_args=False).isnan()


# --------------------------------------------------------------------------------------
# across processes: spawned by tests/test_distributed_families.py with the other families
# --------------------------------------------------------------------------------------

N_DIST, D_DIST = 23, 5
# every case runs with the keys all-gathered (True) and passed around the ring ("ring"), a
# learned scale and bias; the tiles of 3, 4 and 5 keys split the blocks of 11 and 12 (2
# processes) or 5 and 6 keys (4 processes) unevenly
DIST_CASES = [
    ("plain", dict()),
    ("tiled-sum", dict(chunk_size=4, reduction="sum", logit_bias=-2.0)),
    ("tiled-none-unnormalised", dict(chunk_size=3, reduction="none", normalize=False,
                                     logit_scale=0.5)),
    ("tiled-mean", dict(chunk_size=5, logit_scale=3.0, logit_bias=-1.0)),
]
GATHERS = (True, "ring")


def _dist_data():
    q = _randn(N_DIST, D_DIST, seed=30)
    return q, q + 0.8 * _randn(N_DIST, D_DIST, seed=31)


def _learned(options: dict) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """`options` with the scale and bias as leaf tensors that require grad."""
    t, b = (torch.tensor(float(options.get(name, default)), dtype=torch.float64,
                         requires_grad=True)
            for name, default in (("logit_scale", 10.0), ("logit_bias", -10.0)))
    return dict(options, logit_scale=t, logit_bias=b), t, b


def _second_order(q, k, **kw):
    """The gradient of `|dL/dq|^2 + <dL/dk, k>` (L the sum of the per-query losses), so
    that a backward pass which builds a graph is checked too."""
    loss = sigmoid_contrastive_loss(q, k, reduction="none", chunk_size=4, **kw)
    g_q, g_k = torch.autograd.grad(loss.sum(), (q, k), create_graph=True)
    return torch.autograd.grad(g_q.pow(2).sum() + (g_k * k).sum(), (q, k))


def _second_order_dependent(q, **kw):
    """`_second_order` with keys computed from the queries (`q @ M`): the graph-building
    backward must give each input its partial derivative, not its total one."""
    mix = _randn(D_DIST, D_DIST, seed=32)
    loss = sigmoid_contrastive_loss(q, q @ mix, reduction="none", chunk_size=4, **kw)
    (g_q,) = torch.autograd.grad(loss.sum(), (q,), create_graph=True)
    return torch.autograd.grad(g_q.pow(2).sum(), (q,))


def _with_saved_rows(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` and the most rows of a tensor autograd saves for its backward."""
    rows = [0]

    def pack(x: torch.Tensor) -> torch.Tensor:
        rows.append(x.shape[0] if x.ndim else 0)
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        return fn(*args, **kwargs), max(rows)


def siglip_rank_results(rank: int, world: int) -> dict:
    """This rank's SigLIP results inside a gloo group: the worker of
    `test_distributed_families` computes them with the other families' cases (one spawn for
    all), and `assert_siglip_equals_whole_batch` checks them."""
    q, k = _dist_data()
    rows = rank_rows(rank, world, N_DIST)
    results = {}
    for name, options in DIST_CASES:
        for gather in GATHERS:
            ql, kl = q[rows].clone().requires_grad_(), k[rows].clone().requires_grad_()
            learned, t, b = _learned(options)
            loss, saved_rows = _with_saved_rows(sigmoid_contrastive_loss, ql, kl,
                                                gather_distributed=gather, **learned)
            loss.sum().backward()
            results[f"siglip-{name}-{gather}"] = dict(
                loss=loss.detach(), grad_q=ql.grad, grad_k=kl.grad, grad_t=t.grad,
                grad_b=b.grad, rows=rows, saved_rows=saved_rows)
    for gather in GATHERS:
        ql, kl = q[rows].clone().requires_grad_(), k[rows].clone().requires_grad_()
        results[f"siglip-second-order-{gather}"] = dict(
            grads=_second_order(ql, kl, gather_distributed=gather), rows=rows)
        results[f"siglip-second-order-dependent-{gather}"] = dict(
            grads=_second_order_dependent(q[rows].clone().requires_grad_(),
                                          gather_distributed=gather), rows=rows)
        loss_fn = SigLIPLoss(logit_scale=4.0, logit_bias=-3.0, chunk_size=5, k=2,
                             gather_distributed=gather).double()
        loss = loss_fn(q[rows], k[rows])
        loss.backward()
        results[f"siglip-module-{gather}"] = dict(
            loss=loss.detach(), metric=loss_fn.metric(q[rows], k[rows]),
            grad_t=loss_fn.log_logit_scale.grad, grad_b=loss_fn.logit_bias.grad)
    results["siglip-ring-messages"] = _ring_messages(q[rows], k[rows])
    return results


def _ring_messages(q: torch.Tensor, k: torch.Tensor) -> dict:
    """How many shifts (one block each) the ring makes in a forward and a backward pass."""
    from softmetrics import distributed

    calls: list[int] = []
    original = distributed.Ring.shift

    def counted(self, send, receive, *, tag=0):
        calls.append(len(send))
        return original(self, send, receive, tag=tag)

    distributed.Ring.shift = counted
    try:
        q, k = q.clone().requires_grad_(), k.clone().requires_grad_()
        loss = sigmoid_contrastive_loss(q, k, gather_distributed="ring")
        forward = list(calls)
        loss.backward()
    finally:
        distributed.Ring.shift = original
    return dict(forward=forward, backward=calls[len(forward):])


def assert_siglip_equals_whole_batch(ranks: list[dict], world: int) -> None:
    """Every rank's `siglip_rank_results` equal one process on the whole batch, to 1e-6,
    with the keys all-gathered and passed around the ring; the ring keeps no other
    process's keys for the backward pass."""
    # the forward pass passes the key blocks on world - 1 times; the backward pass too,
    # and the key-gradient accumulators world times (the last brings back the own block's)
    for r in ranks:
        assert r["siglip-ring-messages"] == dict(forward=[1] * (world - 1),
                                                backward=[1] * (2 * world - 1))
    q, k = _dist_data()
    for name, options in DIST_CASES:
        qa, ka = q.clone().requires_grad_(), k.clone().requires_grad_()
        learned, t, b = _learned(options)
        loss = sigmoid_contrastive_loss(qa, ka, **learned)
        grad_q, grad_k, grad_t, grad_b = torch.autograd.grad(loss.sum(), (qa, ka, t, b))
        # "mean"/"sum": one global value on every process, the gradient world_size times
        # the single-process one; "none": each process's own queries, no factor
        factor = 1 if options.get("reduction") == "none" else world
        for gather in GATHERS:
            case = f"{name}, gather_distributed={gather!r}"
            results = [r[f"siglip-{name}-{gather}"] for r in ranks]
            for res in results:
                want = loss.detach()[res["rows"]] if loss.ndim else loss.detach()
                assert_close_to(res["loss"], want, case)
                assert_close_to(res["grad_q"] / factor, grad_q[res["rows"]], case)
                assert_close_to(res["grad_k"] / factor, grad_k[res["rows"]], case)
            # each process's scale and bias get its own queries' share (times world_size
            # for "mean"/"sum"): summed over the processes, the whole batch's gradient
            for key, want in (("grad_t", grad_t), ("grad_b", grad_b)):
                got = sum(res[key] for res in results) / factor
                assert_close_to(got, want, f"{case} {key}")
        for gathered, ring in zip(*(
                [r[f"siglip-{name}-{gather}"] for r in ranks] for gather in GATHERS),
                strict=True):
            for key in ("loss", "grad_q", "grad_k", "grad_t", "grad_b"):
                assert_close_to(ring[key], gathered[key], f"{name}: ring and gather {key}")
            # the ring saves this process's rows only, the gather every process's keys
            assert ring["saved_rows"] == ring["rows"].stop - ring["rows"].start
            assert gathered["saved_rows"] == N_DIST
    want = _second_order(q.clone().requires_grad_(), k.clone().requires_grad_())
    want_dependent = _second_order_dependent(q.clone().requires_grad_())
    loss_fn = SigLIPLoss(logit_scale=4.0, logit_bias=-3.0, chunk_size=5, k=2).double()
    loss = loss_fn(q, k)
    loss.backward()
    for gather in GATHERS:
        for r in ranks:
            res = r[f"siglip-second-order-{gather}"]
            for got, whole in zip(res["grads"], want, strict=True):
                assert_close_to(got, whole[res["rows"]], f"second order, {gather!r}")
            res = r[f"siglip-second-order-dependent-{gather}"]
            for got, whole in zip(res["grads"], want_dependent, strict=True):
                assert_close_to(got, whole[res["rows"]],
                                f"second order, keys from queries, {gather!r}")
            res = r[f"siglip-module-{gather}"]
            assert_close_to(res["loss"], loss.detach(), f"SigLIPLoss {gather!r}")
            assert_close_to(res["metric"], loss_fn.metric(q, k), f"SigLIPLoss {gather!r}")
        # each process's parameter gradient is world_size times its own rows' share:
        # DistributedDataParallel's average over processes gives the single-process
        # gradient
        for param, key in ((loss_fn.log_logit_scale, "grad_t"), (loss_fn.logit_bias, "grad_b")):
            averaged = sum(r[f"siglip-module-{gather}"][key] for r in ranks) / world
            assert_close_to(averaged, param.grad, f"SigLIPLoss {gather!r} {key}")


def test_gathering_is_identity_without_a_process_group():
    q, k = _dist_data()
    assert _siglip_tiles.gather_keys(k, gather_distributed=True, process_group=None) is None
    torch.testing.assert_close(sigmoid_contrastive_loss(q, k, gather_distributed=True),
                               sigmoid_contrastive_loss(q, k), atol=0, rtol=0)
    torch.testing.assert_close(sigmoid_contrastive_loss(q, k, gather_distributed="ring"),
                               sigmoid_contrastive_loss(q, k), atol=0, rtol=0)
