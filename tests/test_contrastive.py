"""Tests of the contrastive family: InfoNCE (tiled and not), retrieval accuracy, MI bound, NCE.

References are written here as explicit Python loops over queries and candidates, and as
the naive `F.cross_entropy` formulation on the full logits matrix.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st

from softmetrics import InfoNCELoss, NCELoss, SigLIPLoss, _tuning
from softmetrics.functional import (
    _infonce_tiles,
    _nce_core,
    info_nce,
    mutual_information_bound,
    nce_loss,
    retrieval_accuracy,
    sigmoid_contrastive_loss,
)

from .seeded import seeded_randn

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32,
           requires_grad: bool = False) -> torch.Tensor:
    return seeded_randn(*shape, seed=seed, dtype=dtype, requires_grad=requires_grad)


def assert_grads_close(got, want, inputs, **tol):
    """Gradients of two scalar outputs with respect to `inputs` agree."""
    for a, b in zip(torch.autograd.grad(got, inputs), torch.autograd.grad(want, inputs),
                    strict=True):
        torch.testing.assert_close(a, b, **tol)


# --------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------


def ref_candidates(q, k, negatives, i, in_batch, query_negatives):
    """Candidates of query i, the positive first, built one by one."""
    n = q.shape[0]
    cands = [k[i]]
    if in_batch:
        cands += [k[j] for j in range(n) if j != i]
    if query_negatives:
        cands += [q[j] for j in range(n) if j != i]
    if negatives is not None:
        rows = negatives if negatives.ndim == 2 else negatives[i]
        cands += [rows[m] for m in range(rows.shape[0])]
    return cands


def ref_info_nce(q, k, negatives=None, *, in_batch=True, query_negatives=False, tau=0.07,
                 normalize=True, symmetric=False):
    """Per-query InfoNCE by an explicit loop over queries and their candidates."""
    if normalize:
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        negatives = None if negatives is None else F.normalize(negatives, dim=-1)

    def one_direction(a, b, neg):
        losses = []
        for i in range(a.shape[0]):
            cands = ref_candidates(a, b, neg, i, in_batch, query_negatives)
            logits = torch.stack([torch.dot(a[i], c) for c in cands]) / tau
            losses.append(torch.logsumexp(logits, 0) - logits[0])
        return torch.stack(losses)

    loss = one_direction(q, k, negatives)
    if symmetric:
        loss = 0.5 * (loss + one_direction(k, q, None))
    return loss


def naive_info_nce(q, k, tau=0.07):
    """The usual formulation: cross-entropy over the full N x N cosine logits."""
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / tau
    return F.cross_entropy(logits, torch.arange(q.shape[0]))


def ref_nt_xent(z1, z2, tau):
    """SimCLR's NT-Xent over 2N views by an explicit loop over anchors."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n2 = z.shape[0]
    half = n2 // 2
    losses = []
    for a in range(n2):
        pos = (a + half) % n2
        others = [b for b in range(n2) if b != a]
        logits = torch.stack([torch.dot(z[a], z[b]) for b in others]) / tau
        pos_logit = torch.dot(z[a], z[pos]) / tau
        losses.append(torch.logsumexp(logits, 0) - pos_logit)
    return torch.stack(losses).mean()


def ref_retrieval(q, k, negatives=None, *, in_batch=True, query_negatives=False, k_top=1,
                  normalize=True):
    """Top-k accuracy with ties broken uniformly at random (in expectation), by loops."""
    if normalize:
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        negatives = None if negatives is None else F.normalize(negatives, dim=-1)
    out = []
    for i in range(q.shape[0]):
        cands = ref_candidates(q, k, negatives, i, in_batch, query_negatives)
        scores = [float(q[i] @ c) for c in cands]
        # the positive computed the way the in-batch matrix computes it
        pos = scores[0]
        greater = sum(s > pos for s in scores[1:])
        tied = 1 + sum(s == pos for s in scores[1:])
        # positions greater+1 .. greater+tied are equally likely for the positive
        out.append(sum(greater + r <= k_top for r in range(1, tied + 1)) / tied)
    return torch.tensor(out)


def ref_nce(x, target, weight, bias, noise, log_q, k):
    """Per-example NCE by loops, given the noise ids (N, K) and log q."""
    out = []
    for n in range(x.shape[0]):
        def delta(w, n=n):
            return torch.dot(x[n], weight[w]) + bias[w] - math.log(k) - log_q[w]
        term = -F.logsigmoid(delta(target[n]))
        for j in range(noise.shape[1]):
            term = term - torch.log1p(-torch.sigmoid(delta(noise[n, j])))
        out.append(term)
    return torch.stack(out)


# --------------------------------------------------------------------------------------
# InfoNCE against the references
# --------------------------------------------------------------------------------------

CASES = [
    dict(),
    dict(in_batch_negatives=False, negatives="shared"),
    dict(negatives="shared"),
    dict(negatives="per_query"),
    dict(in_batch_negatives=False, negatives="per_query"),
    dict(query_negatives=True),
    dict(query_negatives=True, in_batch_negatives=False),
    dict(query_negatives=True, negatives="shared"),
    dict(symmetric=True),
    dict(symmetric=True, query_negatives=True),
    dict(normalize=False, temperature=1.0),
    dict(temperature=0.5, negatives="per_query", query_negatives=True),
]


def _make_negatives(kind, n, d, seed):
    if kind == "shared":
        return _randn(5, d, seed=seed, requires_grad=True)
    if kind == "per_query":
        return _randn(n, 3, d, seed=seed, requires_grad=True)
    return None


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items())
                         or "default")
@pytest.mark.parametrize("chunk_size", [None, 1, 4, 1000])
def test_info_nce_matches_loop_reference(case, chunk_size, device):
    case = dict(case)
    n, d = 7, 5
    q = _randn(n, d, seed=1, requires_grad=True)
    k = _randn(n, d, seed=2, requires_grad=True)
    neg = _make_negatives(case.pop("negatives", None), n, d, seed=3)
    tau = case.get("temperature", 0.07)
    on_device = [None if t is None else t.detach().to(device).requires_grad_(True)
                 for t in (q, k, neg)]
    got = info_nce(on_device[0], on_device[1], negatives=on_device[2], reduction="none",
                   chunk_size=chunk_size, **case)
    want = ref_info_nce(q, k, neg, in_batch=case.get("in_batch_negatives", True),
                        query_negatives=case.get("query_negatives", False), tau=tau,
                        normalize=case.get("normalize", True),
                        symmetric=case.get("symmetric", False))
    torch.testing.assert_close(got.cpu(), want, atol=1e-5, rtol=1e-5)
    inputs = [t for t in (q, k, neg) if t is not None]
    weights = _randn(n, seed=4)  # a non-uniform upstream gradient
    g_got = torch.autograd.grad((got * weights.to(device)).sum(),
                                [t for t in on_device if t is not None])
    g_want = torch.autograd.grad((want * weights).sum(), inputs)
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a.cpu(), b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("chunk_size", [None, 3, 64, 100])
@pytest.mark.parametrize("tau", [0.07, 1.0])
def test_info_nce_equals_naive_cross_entropy(chunk_size, tau, device):
    q = _randn(100, 16, seed=5).to(device).requires_grad_(True)
    k = _randn(100, 16, seed=6).to(device).requires_grad_(True)
    got = info_nce(q, k, temperature=tau, chunk_size=chunk_size)
    want = naive_info_nce(q.cpu(), k.cpu(), tau)
    torch.testing.assert_close(got.cpu(), want, atol=1e-5, rtol=1e-5)
    for a, b in zip(torch.autograd.grad(got, (q, k)), torch.autograd.grad(want, (q, k)),
                    strict=True):
        torch.testing.assert_close(a.cpu(), b.cpu(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk_size", [None, 5])
def test_simclr_nt_xent_equals_loop_reference(chunk_size):
    z1 = _randn(9, 6, seed=7, requires_grad=True)
    z2 = _randn(9, 6, seed=8, requires_grad=True)
    got = info_nce(z1, z2, query_negatives=True, symmetric=True, temperature=0.1,
                   chunk_size=chunk_size)
    want = ref_nt_xent(z1, z2, 0.1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert_grads_close(got, want, (z1, z2), atol=1e-5, rtol=1e-5)


def test_agrees_with_pytorch_metric_learning_and_info_nce_pytorch():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    info_nce_pkg = pytest.importorskip("info_nce")
    z1, z2 = _randn(16, 8, seed=9), _randn(16, 8, seed=10)
    labels = torch.arange(16).repeat(2)
    theirs = pml.NTXentLoss(temperature=0.2)(torch.cat([z1, z2]), labels)
    ours = info_nce(z1, z2, query_negatives=True, symmetric=True, temperature=0.2)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    neg = _randn(10, 8, seed=11)
    theirs = info_nce_pkg.info_nce(z1, z2, neg, temperature=0.1)
    ours = info_nce(z1, z2, negatives=neg, in_batch_negatives=False, temperature=0.1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_closed_form_two_orthogonal_pairs():
    # cosine logits [[1, 0], [0, 1]] / tau: loss = log(1 + exp(-1 / tau)) per query
    q = torch.eye(2)
    for tau in (0.5, 1.0, 2.0):
        want = math.log1p(math.exp(-1.0 / tau))
        torch.testing.assert_close(info_nce(q, q.clone(), temperature=tau),
                                   torch.tensor(want))
        torch.testing.assert_close(info_nce(q, q.clone(), temperature=tau, chunk_size=1),
                                   torch.tensor(want))


def _graph_names(node, seen=None) -> set[str]:
    """Names of every backward node reachable from `node`."""
    seen = set() if seen is None else seen
    if node is not None and node not in seen:
        seen.add(node)
        for child, _ in node.next_functions:
            _graph_names(child, seen)
    return {n.name() for n in seen}


def test_automatic_tiling_uses_the_tiled_function(monkeypatch):
    q = _randn(40, 4, seed=12, requires_grad=True)
    k = _randn(40, 4, seed=13, requires_grad=True)
    want = info_nce(q, k)
    monkeypatch.setattr(_tuning, "INFONCE_AUTO_TILE_ELEMENTS", 100)
    monkeypatch.setattr(_tuning, "INFONCE_CPU_TILE_ELEMENTS", 400)
    monkeypatch.setattr(_tuning, "INFONCE_MIN_CHUNK", 3)
    cpu = torch.device("cpu")
    assert _infonce_tiles.auto_chunk(40, 40, None, cpu) == 20  # square tiles: 20 x 20
    assert _infonce_tiles.auto_chunk(10, 50, None, cpu) == 40  # all 10 anchors, 40 candidates
    # a tile as wide as the candidates is the full matrix: no tiles (plain autograd)
    assert _infonce_tiles.auto_chunk(10, 40, None, cpu) is None
    assert [_infonce_tiles.auto_chunk(9, 7, c, cpu) for c in (6, 7, 8)] == [6, None, None]
    got = info_nce(q, k)
    assert "_TiledInfoNCEBackward" in _graph_names(got.grad_fn)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    assert_grads_close(got, want, (q, k), atol=1e-6, rtol=1e-6)


def test_reductions_agree():
    q, k = _randn(6, 3, seed=14), _randn(6, 3, seed=15)
    none = info_nce(q, k, reduction="none", chunk_size=4)
    assert none.shape == (6,)
    torch.testing.assert_close(info_nce(q, k, reduction="sum", chunk_size=4), none.sum())
    torch.testing.assert_close(info_nce(q, k, reduction="mean"), none.mean())


def test_single_query_and_no_candidates():
    q, k = _randn(1, 3, seed=16), _randn(1, 3, seed=17)
    assert info_nce(q, k).item() == 0.0  # one candidate: the positive
    assert info_nce(q, k, query_negatives=True, in_batch_negatives=False).item() == 0.0
    assert retrieval_accuracy(q, k).item() == 1.0


# --------------------------------------------------------------------------------------
# gradcheck (float64)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-1, 0, 2, 5])
@pytest.mark.parametrize("pos", [-1, 0, 3])
@pytest.mark.parametrize("normalize", [False, True])
def test_gradcheck_tiled_function(offset, pos, normalize, device):
    """The tiled Function in every role at once: two passes over three tensors, each
    tensor an anchor in one pass and a candidate in another (gradients shared), candidate
    blocks of different lengths, the temperature; 2 x 4 tiles with short last ones."""
    def randn(*shape, seed):
        return _randn(*shape, seed=seed, dtype=torch.float64).to(device).requires_grad_(True)

    a, b, c = randn(5, 3, seed=18), randn(9, 3, seed=19), randn(4, 3, seed=25)
    tau = torch.tensor(0.7, dtype=torch.float64, device=device, requires_grad=True)
    passes = ((0, (1, 2), offset, pos), (1, (0, 2), offset, pos))

    def f(t, a, b, c):
        return _infonce_tiles.tiled_info_nce(t, normalize, 4, 3, torch.float64, passes,
                                             a, b, c)

    assert torch.autograd.gradcheck(f, (tau, a, b, c))


def test_symmetric_tiled_loss_is_one_function():
    """Both directions of CLIP (and of SimCLR's NT-Xent) run in one tiled Function, so the
    gradient buffers of the queries and keys are shared by the two directions."""
    q = _randn(12, 4, seed=26, requires_grad=True)
    k = _randn(12, 4, seed=27, requires_grad=True)
    for qneg in (False, True):
        loss = info_nce(q, k, symmetric=True, query_negatives=qneg, chunk_size=5)
        names = []
        stack, seen = [loss.grad_fn], set()
        while stack:
            node = stack.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            names.append(node.name())
            stack.extend(child for child, _ in node.next_functions)
        assert names.count("_TiledInfoNCEBackward") == 1
        full = info_nce(q, k, symmetric=True, query_negatives=qneg, chunk_size=10**9)
        torch.testing.assert_close(loss, full)
        assert_grads_close(loss, full, (q, k), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_gradcheck_info_nce_with_tensor_temperature(chunk_size, device):
    q = _randn(5, 3, seed=20, dtype=torch.float64).to(device).requires_grad_(True)
    k = _randn(5, 3, seed=21, dtype=torch.float64).to(device).requires_grad_(True)
    neg = _randn(5, 2, 3, seed=22, dtype=torch.float64).to(device).requires_grad_(True)
    tau = torch.tensor(0.3, dtype=torch.float64, device=device, requires_grad=True)

    def f(q, k, neg, tau):
        return info_nce(q, k, negatives=neg, temperature=tau, query_negatives=True,
                        chunk_size=chunk_size, reduction="none")

    assert torch.autograd.gradcheck(f, (q, k, neg, tau))


# --------------------------------------------------------------------------------------
# properties (hypothesis)
# --------------------------------------------------------------------------------------

sizes = st.integers(1, 12)
dims = st.integers(1, 6)
seeds = st.integers(0, 2**31 - 1)


@given(n=sizes, d=dims, seed=seeds, chunk=st.integers(1, 15), sym=st.booleans(),
       qneg=st.booleans(), inb=st.booleans())
def test_permuting_pairs_permutes_losses(n, d, seed, chunk, sym, qneg, inb):
    q, k = _randn(n, d, seed=seed), _randn(n, d, seed=seed + 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    opts = dict(symmetric=sym, query_negatives=qneg, in_batch_negatives=inb,
                reduction="none", temperature=0.2)
    if inb or qneg:  # else no candidate besides the positive: an error
        base = info_nce(q, k, chunk_size=chunk, **opts)
        permuted = info_nce(q[perm], k[perm], **opts)
        torch.testing.assert_close(permuted, base[perm], atol=1e-5, rtol=1e-5)
    acc = retrieval_accuracy(q, k, query_negatives=qneg, in_batch_negatives=inb,
                             reduction="none")
    torch.testing.assert_close(
        retrieval_accuracy(q[perm], k[perm], query_negatives=qneg, in_batch_negatives=inb,
                           reduction="none"), acc[perm])


@given(n=sizes, d=dims, seed=seeds, tau=st.floats(0.01, 10.0),
       m=st.integers(0, 5), normalize=st.booleans())
def test_loss_nonnegative_and_bound_at_most_log_n(n, d, seed, tau, m, normalize):
    q, k = _randn(n, d, seed=seed), _randn(n, d, seed=seed + 1)
    neg = _randn(m, d, seed=seed + 2)
    loss = info_nce(q, k, negatives=neg, temperature=tau, normalize=normalize,
                    reduction="none")
    assert bool((loss >= 0).all())
    num = n + m
    bound = mutual_information_bound(loss.mean(), num)
    assert bound.item() <= math.log(num) + 1e-6
    # no candidate but the positive: the loss is at most log(#candidates) only if the
    # positive scores highest; it is always at least log(#cand) - (max - pos)/tau >= 0
    assert torch.isfinite(loss).all()


@given(n=st.integers(2, 30), d=dims, seed=seeds, chunk=st.integers(1, 40),
       m=st.integers(0, 7), qneg=st.booleans(), per_query=st.booleans())
def test_tiled_equals_untiled(n, d, seed, chunk, m, qneg, per_query, device):
    q = _randn(n, d, seed=seed).to(device).requires_grad_(True)
    k = _randn(n, d, seed=seed + 1).to(device).requires_grad_(True)
    neg = (_randn(n, m, d, seed=seed + 2) if per_query else _randn(m, d, seed=seed + 2))
    neg = neg.to(device).requires_grad_(True)
    # normalize=False: the normalisation's backward cancels catastrophically for tiny
    # vectors in either implementation, which would only test rounding
    opts = dict(negatives=neg, query_negatives=qneg, temperature=0.5, reduction="none",
                normalize=False)
    tiled = info_nce(q, k, chunk_size=chunk, **opts)
    full = info_nce(q, k, chunk_size=10**9, **opts)
    torch.testing.assert_close(tiled, full, atol=1e-5, rtol=1e-5)
    w = _randn(n, seed=seed + 3).to(device)
    inputs = (q, k, neg) if neg.numel() else (q, k)
    for a, b in zip(torch.autograd.grad((tiled * w).sum(), inputs),
                    torch.autograd.grad((full * w).sum(), inputs), strict=True):
        # float32 sums over up to ~70 candidates in a different order: the rounding is
        # relative to the largest gradient entry, not to each (possibly cancelled) entry
        scale = max(1.0, b.abs().max().item())
        torch.testing.assert_close(a, b, atol=1e-5 * scale, rtol=1e-4)


@given(n=st.integers(2, 10), d=dims, seed=seeds, chunk=st.sampled_from([None, 1, 3]),
       dup=st.integers(1, 4))
def test_finite_with_small_temperature_and_duplicate_keys(n, d, seed, chunk, dup):
    base = _randn(n, d, seed=seed)
    k = base.repeat(dup, 1)[: n].clone().requires_grad_(True)  # duplicated rows
    k_dup = torch.cat([k[:1]] * n).detach().requires_grad_(True)  # every key the same
    q = _randn(n, d, seed=seed + 1, requires_grad=True)
    for keys in (k, k_dup):
        for tau in (0.01, 1e-3):
            loss = info_nce(q, keys, temperature=tau, chunk_size=chunk, symmetric=True,
                            query_negatives=True)
            grads = torch.autograd.grad(loss, (q, keys))
            assert torch.isfinite(loss)
            assert all(torch.isfinite(g).all() for g in grads)
    # all keys equal: every candidate ties with the positive, loss = log(#candidates)
    loss = info_nce(q, k_dup, reduction="none")
    torch.testing.assert_close(loss, torch.full((n,), math.log(n)), atol=1e-5, rtol=1e-5)
    # ties are exact equalities of computed scores: with integer embeddings (exact dot
    # products) equal keys tie exactly and share the credit
    q_int, k_int = (3 * q).round().detach(), (3 * k_dup).round().detach()
    acc = retrieval_accuracy(q_int, k_int, normalize=False, reduction="none")
    torch.testing.assert_close(acc, torch.full((n,), 1.0 / n))


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_extreme_inputs_finite(chunk_size):
    q = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [0.0, 0.0, 0.0]], requires_grad=True)
    k = torch.tensor([[1e4, 1e4, 0.0], [-1e4, 1e4, -1e4], [5.0, 0.0, 1.0]], requires_grad=True)
    for normalize in (True, False):
        loss = info_nce(q, k, temperature=1e-3, normalize=normalize, chunk_size=chunk_size,
                        query_negatives=True)
        grads = torch.autograd.grad(loss, (q, k))
        assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)


@given(n=st.integers(1, 10), d=dims, seed=seeds, m=st.integers(0, 4),
       per_query=st.booleans(), qneg=st.booleans(), inb=st.booleans(), k_top=st.integers(1, 4),
       quantize=st.booleans())
def test_retrieval_accuracy_matches_loop_reference(n, d, seed, m, per_query, qneg, inb, k_top,
                                                   quantize, device):
    q, k = _randn(n, d, seed=seed), _randn(n, d, seed=seed + 1)
    neg = _randn(n, m, d, seed=seed + 2) if per_query else _randn(m, d, seed=seed + 2)
    if quantize:  # coarse integer embeddings: many exact ties
        q, k, neg = q.round(), k.round(), neg.round()
    got = retrieval_accuracy(q.to(device), k.to(device), negatives=neg.to(device),
                             query_negatives=qneg, in_batch_negatives=inb, k=k_top,
                             normalize=False, reduction="none").cpu()
    want = ref_retrieval(q, k, neg, query_negatives=qneg, in_batch=inb, k_top=k_top,
                         normalize=False)
    torch.testing.assert_close(got, want)
    assert 0.0 <= retrieval_accuracy(q, k, negatives=neg, k=k_top).item() <= 1.0


@pytest.mark.parametrize("per_query", [True, False])
@pytest.mark.parametrize("in_batch", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_negative_equal_to_the_key_ties_with_it(per_query, in_batch, normalize, dtype,
                                                  device):
    """A negative that is a copy of the positive key scores as the key, to the last bit:
    the two share the credit (1/2 at k = 1 when nothing else comes first), whatever the
    embeddings (not only integer ones, whose dot products are exact in any order)."""
    q, k = _randn(6, 32, seed=3).to(dtype), _randn(6, 32, seed=4).to(dtype)
    neg = k.unsqueeze(1).clone() if per_query else k.clone()
    got = retrieval_accuracy(q.to(device), k.to(device), negatives=neg.to(device),
                             in_batch_negatives=in_batch, normalize=normalize,
                             reduction="none").cpu()
    want = ref_retrieval(q, k, neg, in_batch=in_batch, normalize=normalize)
    torch.testing.assert_close(got, want.to(got.dtype), rtol=0, atol=0)
    if not in_batch:
        assert got.tolist() == [0.5] * 6 if per_query else all(v <= 0.5 for v in got.tolist())


def test_retrieval_accuracy_tiles_over_queries(monkeypatch):
    q, k = _randn(50, 4, seed=23), _randn(50, 4, seed=24)
    k[10] = k[3]  # a duplicate key
    want = retrieval_accuracy(q, k, reduction="none", query_negatives=True, k=2)
    monkeypatch.setattr(_tuning, "INFONCE_CPU_TILE_ELEMENTS", 7 * 100)  # 7 queries per tile
    got = retrieval_accuracy(q, k, reduction="none", query_negatives=True, k=2)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got, ref_retrieval(q, k, query_negatives=True, k_top=2))


@given(n=st.integers(1, 10), d=dims, seed=seeds, quantize=st.booleans())
def test_soft_tends_to_hard_as_temperature_to_zero(n, d, seed, quantize):
    q, k = _randn(n, d, seed=seed), _randn(n, d, seed=seed + 1)
    if quantize:
        q, k = q.round(), k.round()
    q, k = q.double(), k.double()
    hard = retrieval_accuracy(q, k, normalize=False, reduction="none")
    # scores are multiples of 1 apart (integers) or generic: the gap is >= 1e-3 here
    logits = q @ k.T
    gaps = (logits - logits.diagonal()[:, None]).abs()
    gaps = gaps[gaps > 0]
    if gaps.numel():
        tau = gaps.min().item() / 60.0
        soft = info_nce(q, k, normalize=False, temperature=tau, reduction="none").neg().exp()
        torch.testing.assert_close(soft, hard, atol=1e-6 * n + 1e-12 + n * math.exp(-60),
                                   rtol=0)
    # at a high temperature the softmax is uniform over the n candidates instead
    hot = info_nce(q, k, normalize=False, temperature=1e9, reduction="none").neg().exp()
    torch.testing.assert_close(hot, torch.full((n,), 1.0 / n, dtype=torch.float64))


# --------------------------------------------------------------------------------------
# the mutual-information bound on correlated Gaussians (Poole et al. 2019)
# --------------------------------------------------------------------------------------


def gaussian_bound(rho, d, n, batches, seed):
    """InfoNCE bound with the optimal critic log p(y|x)/p(y) on Gaussians, correlation rho.

    The critic b <x, y> - a |y|^2 (+ a function of x, which cancels) is a dot product of
    [b x, 1] and [y, -a |y|^2], so `info_nce(normalize=False, temperature=1)` computes it.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batches, n, d, generator=g, dtype=torch.float64)
    y = rho * x + math.sqrt(1 - rho**2) * torch.randn(batches, n, d, generator=g,
                                                        dtype=torch.float64)
    b = rho / (1 - rho**2)
    a = rho**2 / (2 * (1 - rho**2))
    ones = torch.ones(batches, n, 1, dtype=torch.float64)
    query = torch.cat([b * x, ones], dim=2)
    key = torch.cat([y, -a * (y * y).sum(dim=2, keepdim=True)], dim=2)
    losses = torch.stack([info_nce(query[i], key[i], normalize=False, temperature=1.0,
                                   validate_args=False) for i in range(batches)])
    return mutual_information_bound(losses.mean(), n).item()


@given(rho=st.floats(0.0, 0.999), d=st.integers(1, 10), log2n=st.integers(3, 8),
       seed=seeds)
def test_gaussian_bound_below_true_mi_and_log_n(rho, d, log2n, seed):
    n = 2**log2n
    true_mi = -(d / 2) * math.log(1 - rho**2)
    bound = gaussian_bound(rho, d, n, batches=2048 // n, seed=seed)  # 2048 queries
    assert bound <= math.log(n) + 1e-9
    # the bound holds in expectation; over 2048 queries the standard deviation of the
    # estimate is below 0.035 nats for these settings (measured over 20 seeds each for
    # N in {8, 16, 64, 256}), so 0.15 nats of slack is over 4 standard deviations
    assert bound <= true_mi + 0.15
    if true_mi < 0.5 and n >= 64:  # far below the log N ceiling the bound is nearly tight
        assert bound >= true_mi - 0.1
    if true_mi > math.log(n) + 6:  # far above it the bound saturates at log N
        assert bound >= math.log(n) - 0.05


# --------------------------------------------------------------------------------------
# NCE
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("shared", [False, True])
def test_nce_matches_loop_reference(uniform, shared):
    n, h, v, k = 6, 4, 9, 5
    x = _randn(n, h, seed=30, requires_grad=True)
    w = _randn(v, h, seed=31, requires_grad=True)
    bias = _randn(v, seed=32, requires_grad=True)
    target = torch.randint(v, (n,), generator=torch.Generator().manual_seed(33))
    q = None if uniform else torch.softmax(_randn(v, seed=34), 0)
    got = nce_loss(x, target, w, bias, num_noise=k, noise_distribution=q, shared_noise=shared,
                   generator=torch.Generator().manual_seed(35), reduction="none")
    # the same draws, as documented: randint for uniform noise, multinomial otherwise
    g = torch.Generator().manual_seed(35)
    shape = (k,) if shared else (n, k)
    if uniform:
        noise = torch.randint(v, shape, generator=g)
        log_q = torch.full((v,), -math.log(v))
    else:
        noise = torch.multinomial(q, math.prod(shape), replacement=True, generator=g)
        noise = noise.view(shape)
        log_q = q.log()
    if shared:
        noise = noise.expand(n, k)
    want = ref_nce(x, target, w, bias, noise, log_q, k)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for a, b in zip(torch.autograd.grad(got.sum(), (x, w, bias)),
                    torch.autograd.grad(want.sum(), (x, w, bias)), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shared", [False, True])
def test_nce_empty_batch(shared):
    # found by the fuzzer: N = 0 with a noise distribution asked torch.multinomial for 0
    # draws (a RuntimeError), and the mean over no example was 0/0
    x, w = torch.zeros(0, 3, requires_grad=True), _randn(5, 3, seed=64, requires_grad=True)
    target = torch.zeros(0, dtype=torch.long)
    q = torch.full((5,), 0.2)
    for noise in (None, q):
        loss = nce_loss(x, target, w, None, num_noise=4, noise_distribution=noise,
                        shared_noise=shared)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.isfinite(w.grad).all()
        mod = NCELoss(5, 4, noise, shared_noise=shared)
        assert mod(x, target, w, None).item() == 0.0
        assert mod.metric(x, target, w, None).item() == 0.0
    assert nce_loss(x, target, w, None, num_noise=4, reduction="none").shape == (0,)


def test_nce_generator_reproducible_and_random():
    x, w = _randn(8, 3, seed=36), _randn(20, 3, seed=37)
    target = torch.arange(8)

    def run(seed):
        return nce_loss(x, target, w, None, num_noise=3,
                        generator=torch.Generator().manual_seed(seed))

    assert run(0).item() == run(0).item()
    assert run(0).item() != run(1).item()


def test_noise_drawn_by_inversion_follows_the_distribution(device):
    """The integer-CDF sampler (the CUDA path of the noise draws): frequencies within 5
    standard deviations of the probabilities, classes of probability 0 never drawn, and
    the draws set by the generator."""
    q = torch.tensor([0.3, 0.0, 0.05, 0.25, 1e-3, 0.0, 0.399], dtype=torch.float64)
    q = (q / q.sum()).float().to(device)
    count = 200_000

    def draw(seed):
        g = torch.Generator(device=device).manual_seed(seed)
        return _nce_core._draw_by_inversion(q, count, g)

    noise = draw(0)
    assert noise.dtype == torch.long and noise.shape == (count,)
    freq = torch.bincount(noise.cpu(), minlength=7).double() / count
    p = q.cpu().double()
    assert (freq[p == 0] == 0).all()
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / count).sqrt() + 1e-12).all()
    assert torch.equal(draw(0), noise) and not torch.equal(draw(1), noise)


def test_noise_inversion_maps_each_integer_draw_to_its_class(monkeypatch):
    """The integer CDF's boundaries, which frequencies cannot see at a resolution of 2^-52:
    the draw d belongs to the class i with cdf[i - 1] <= d < cdf[i], so the first draw (u =
    0) never lands in a leading class of probability 0 and a boundary belongs to the class
    above it."""
    q = torch.tensor([0.0, 0.5, 0.0, 0.5], dtype=torch.float64)
    scale = _nce_core._NOISE_WEIGHT_SCALE
    u = torch.tensor([0.0, 0.5 - 1 / scale, 0.5, 1 - 1 / scale], dtype=torch.float64)
    monkeypatch.setattr(torch, "rand", lambda *args, **kwargs: u.clone())
    draws = _nce_core._draw_by_inversion(q, 4, None)
    assert draws.tolist() == [1, 1, 3, 3]


def test_nce_gradcheck():
    x = _randn(3, 2, seed=38, dtype=torch.float64, requires_grad=True)
    w = _randn(4, 2, seed=39, dtype=torch.float64, requires_grad=True)
    bias = _randn(4, seed=40, dtype=torch.float64, requires_grad=True)
    q = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)

    def f(x, w, bias):
        return nce_loss(x, torch.tensor([0, 3, 1]), w, bias, num_noise=3, noise_distribution=q,
                        generator=torch.Generator().manual_seed(0), reduction="none")

    assert torch.autograd.gradcheck(f, (x, w, bias))


def _fit_free_logits_with_nce(p, n, k, seed):
    """Minimise NCE over free logits s (bias only) for targets drawn from p; fixed noise."""
    v = p.shape[0]
    g = torch.Generator().manual_seed(seed)
    target = torch.multinomial(p, n, replacement=True, generator=g)
    hidden, weight = torch.ones(n, 1, dtype=torch.float64), torch.zeros(v, 1, dtype=torch.float64)
    s = torch.zeros(v, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([s], lr=1.0, max_iter=200, tolerance_grad=1e-12,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nce_loss(hidden, target, weight, s, num_noise=k,
                        generator=torch.Generator().manual_seed(seed + 1))
        loss.backward()
        return loss

    opt.step(closure)
    noise = torch.randint(v, (n, k), generator=torch.Generator().manual_seed(seed + 1))
    return s.detach(), torch.bincount(target, minlength=v), torch.bincount(noise.flatten(),
                                                                          minlength=v)


def test_nce_recovers_log_probabilities():
    v, n, k = 8, 20000, 10
    p = torch.tensor([0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.04], dtype=torch.float64)
    s, data_counts, noise_counts = _fit_free_logits_with_nce(p, n, k, seed=42)
    # the minimiser in closed form for these draws: exp(s - log(K q)) = data / noise counts
    exact = (data_counts / noise_counts).double().log() + math.log(k / v)
    torch.testing.assert_close(s, exact, atol=1e-5, rtol=0)
    # and it estimates the self-normalised log-probabilities: with >= 20000 * 0.04 = 800
    # data draws and about 25000 noise draws per class, the standard deviation of each
    # estimate is below 0.04 nats, so 0.15 nats is about 4 standard deviations
    torch.testing.assert_close(s, p.log(), atol=0.15, rtol=0)
    assert abs(torch.logsumexp(s, 0).item()) < 0.05


def test_nce_gradient_approaches_full_softmax_gradient():
    v, n = 12, 2000
    g = torch.Generator().manual_seed(43)
    s0 = torch.log_softmax(torch.randn(v, generator=g, dtype=torch.float64), 0)  # normalised
    p_data = torch.softmax(torch.randn(v, generator=g, dtype=torch.float64), 0)
    target = torch.multinomial(p_data, n, replacement=True, generator=g)
    hidden, weight = torch.ones(n, 1, dtype=torch.float64), torch.zeros(v, 1, dtype=torch.float64)
    s = s0.clone().requires_grad_(True)
    full = torch.autograd.grad(F.cross_entropy(s.expand(n, v), target), s)[0]
    q = torch.softmax(torch.randn(v, generator=g, dtype=torch.float64), 0)
    errors = []
    for k in (1, 10, 100, 1000):
        loss = nce_loss(hidden, target, weight, s, num_noise=k, noise_distribution=q,
                        generator=torch.Generator().manual_seed(k))
        errors.append((torch.autograd.grad(loss, s)[0] - full).norm().item())
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 0.05 * errors[0]
    assert errors[-1] < 0.02


# --------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------


def test_info_nce_module_equals_function():
    q = _randn(8, 4, seed=50, requires_grad=True)
    k = _randn(8, 4, seed=51, requires_grad=True)
    neg = _randn(3, 4, seed=52)
    mod = InfoNCELoss(temperature=0.2, query_negatives=True, chunk_size=3, k=2)
    torch.testing.assert_close(mod(q, k, neg), info_nce(q, k, negatives=neg, temperature=0.2,
                                                        query_negatives=True))
    torch.testing.assert_close(mod.metric(q, k, neg),
                               retrieval_accuracy(q, k, negatives=neg, query_negatives=True,
                                                  k=2))
    sym = InfoNCELoss(symmetric=True, reduction="none")
    torch.testing.assert_close(sym(q, k), info_nce(q, k, symmetric=True, reduction="none"))


def test_info_nce_learnable_temperature():
    q, k = _randn(8, 4, seed=53), _randn(8, 4, seed=54)
    mod = InfoNCELoss(temperature=0.5, learn_temperature=True)
    params = dict(mod.named_parameters())
    assert list(params) == ["log_temperature"]
    torch.testing.assert_close(params["log_temperature"].detach(), torch.tensor(math.log(0.5)))
    loss = mod(q, k)
    torch.testing.assert_close(loss, info_nce(q, k, temperature=0.5))
    loss.backward()
    assert params["log_temperature"].grad is not None
    # d loss / d log tau by finite differences
    eps = 1e-3
    lo = info_nce(q.double(), k.double(), temperature=0.5 * math.exp(-eps))
    hi = info_nce(q.double(), k.double(), temperature=0.5 * math.exp(eps))
    assert abs(params["log_temperature"].grad.item() - (hi - lo).item() / (2 * eps)) < 1e-3
    fixed = InfoNCELoss(temperature=0.5)
    assert not list(fixed.parameters())


def test_nce_module_equals_function_and_metric_is_full_softmax_nll():
    x, w, bias = _randn(5, 3, seed=55), _randn(7, 3, seed=56), _randn(7, seed=57)
    target = torch.tensor([0, 6, 2, 2, 4])
    q = torch.softmax(_randn(7, seed=58), 0)
    mod = NCELoss(7, 4, q)
    got = mod(x, target, w, bias, generator=torch.Generator().manual_seed(1))
    want = nce_loss(x, target, w, bias, num_noise=4, noise_distribution=q,
                    generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, want)
    assert torch.equal(mod.noise_distribution, q)
    # full-softmax NLL by an explicit loop
    nll = [-(x[i] @ w[target[i]] + bias[target[i]])
           + torch.logsumexp(torch.stack([x[i] @ w[c] + bias[c] for c in range(7)]), 0)
           for i in range(5)]
    torch.testing.assert_close(mod.metric(x, target, w, bias), torch.stack(nll).mean())


# --------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_accumulate_in_float32(dtype):
    q, k = _randn(20, 8, seed=60).to(dtype), _randn(20, 8, seed=61).to(dtype)
    got = info_nce(q, k, chunk_size=7)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, info_nce(q.float(), k.float()), atol=1e-5, rtol=1e-5)
    x, w = _randn(4, 3, seed=62).to(dtype), _randn(6, 3, seed=63).to(dtype)
    loss = nce_loss(x, torch.tensor([0, 1, 2, 3]), w, None, num_noise=2)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


def test_info_nce_errors():
    q, k = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"info_nce: expected `key` to be of shape \(4, 3\)"):
        info_nce(q, torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"expected `key` to be of shape \(4, 3\).*got shape "
                                         r"\(4, 2\)"):
        info_nce(q, torch.randn(4, 2))
    with pytest.raises(TypeError, match=r"info_nce: expected `query` to be a floating-point"):
        info_nce(torch.ones(4, 3, dtype=torch.long), k)
    with pytest.raises(ValueError, match=r"info_nce: expected `temperature` to be > 0, got 0.0"):
        info_nce(q, k, temperature=0)
    with pytest.raises(ValueError, match=r"expected `temperature` to be > 0, got -1.0"):
        info_nce(q, k, temperature=-1.0)
    with pytest.raises(ValueError, match=r"expected `temperature` to be finite and > 0"):
        info_nce(q, k, temperature=torch.tensor(-0.5))
    with pytest.raises(ValueError, match=r"expected `negatives` to be of shape \(M, 3\)"):
        info_nce(q, k, negatives=torch.randn(5, 2))
    with pytest.raises(ValueError, match=r"expected `negatives` to be of shape \(4, K, 3\)"):
        info_nce(q, k, negatives=torch.randn(3, 5, 3))
    with pytest.raises(ValueError, match=r"expected `negatives` to be None when `symmetric=True`"):
        info_nce(q, k, negatives=torch.randn(5, 3), symmetric=True)
    with pytest.raises(ValueError, match=r"expected `reduction` to be one of 'mean', 'sum', "
                                         r"'none', got 'avg'"):
        info_nce(q, k, reduction="avg")
    with pytest.raises(ValueError, match=r"expected `chunk_size` to be an int >= 1, got 0"):
        info_nce(q, k, chunk_size=0)
    with pytest.raises(ValueError, match=r"expected `query` to be a 2-D tensor"):
        info_nce(torch.randn(4), k)
    with pytest.raises(ValueError, match=r"expected `query` to be finite"):
        info_nce(torch.full((4, 3), float("nan")), k)
    with pytest.raises(ValueError, match=r"retrieval_accuracy: expected `k` to be an int >= 1"):
        retrieval_accuracy(q, k, k=0)
    with pytest.raises(ValueError, match=r"mutual_information_bound: expected `num_candidates`"):
        mutual_information_bound(1.0, 0)
    with pytest.raises(ValueError, match=r"InfoNCELoss: expected `temperature` to be > 0"):
        InfoNCELoss(temperature=0.0)


def test_nce_errors():
    x, w, b = torch.randn(3, 2), torch.randn(5, 2), torch.zeros(5)
    t = torch.tensor([0, 1, 4])
    with pytest.raises(ValueError, match=r"nce_loss: expected `num_noise` to be an int >= 1, "
                                         r"got 0"):
        nce_loss(x, t, w, b, num_noise=0)
    with pytest.raises(ValueError, match=r"expected `weight` to be of shape \(V, 2\)"):
        nce_loss(x, t, torch.randn(5, 3), b, num_noise=2)
    with pytest.raises(ValueError, match=r"expected `target` to be of shape \(3,\)"):
        nce_loss(x, t[:2], w, b, num_noise=2)
    with pytest.raises(TypeError, match=r"expected `target` to be an integer tensor"):
        nce_loss(x, t.float(), w, b, num_noise=2)
    with pytest.raises(ValueError, match=r"expected `target` to be integer values in \[0, 5\)"):
        nce_loss(x, torch.tensor([0, 1, 5]), w, b, num_noise=2)
    with pytest.raises(ValueError, match=r"expected `noise_distribution` to be a distribution "
                                         r"summing to 1, got a sum of 0.5"):
        nce_loss(x, t, w, b, num_noise=2, noise_distribution=torch.full((5,), 0.1))
    q = torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"expected `noise_distribution` to be > 0 at every "
                                         r"target class.*got q\(4\) = 0"):
        nce_loss(x, t, w, b, num_noise=2, noise_distribution=q)
    with pytest.raises(ValueError, match=r"expected `noise_distribution` to be non-negative"):
        nce_loss(x, t, w, b, num_noise=2,
                 noise_distribution=torch.tensor([0.6, 0.6, -0.2, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"expected `noise_distribution` to be of shape \(5,\)"):
        nce_loss(x, t, w, b, num_noise=2, noise_distribution=torch.full((4,), 0.25))
    with pytest.raises(ValueError, match=r"NCELoss: expected `num_noise` to be an int >= 1"):
        NCELoss(5, 0)
    # found by the fuzzer: `metric` checks its inputs as `forward` does (it raised
    # IndexError, RuntimeError or NotImplementedError)
    mod = NCELoss(5, 2)
    with pytest.raises(ValueError, match=r"NCELoss: expected `target` to be integer values in "
                                         r"\[0, 5\), got a value 5\."):
        mod.metric(x, torch.tensor([0, 1, 5]), w, b)
    with pytest.raises(TypeError, match=r"NCELoss: expected `input` to be a floating-point"):
        mod.metric(x.long(), t, w, b)
    with pytest.raises(ValueError, match=r"NCELoss: expected `weight` to be of shape \(V, 2\)"):
        mod.metric(x, t, torch.randn(5, 3), b)
    with pytest.raises(ValueError, match=r"NCELoss: expected `bias` to be of shape \(5,\)"):
        mod.metric(x, t, w, torch.zeros(4))
    # the Module holds num_classes: the noise distribution and the output layer must match
    with pytest.raises(ValueError, match=r"^NCELoss: expected `noise_distribution` to be of "
                                         r"shape \(5,\) \(num_classes\), got shape \(4,\)\.$"):
        NCELoss(5, 2, torch.full((4,), 0.25))
    with pytest.raises(ValueError, match=r"^NCELoss: expected `weight` to be 5 rows "
                                         r"\(num_classes\), got shape \(6, 2\)\.$"):
        mod(x, t, torch.randn(6, 2), torch.zeros(6))


# --------------------------------------------------------------------------------------
# the benchmark script keeps working
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_benchmark_smoke(tmp_path):
    script = ROOT / "benchmarks" / "contrastive.py"
    if not script.exists():
        pytest.skip("benchmarks/contrastive.py not present")
    out = subprocess.run([sys.executable, str(script), "--smoke", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "contrastive.json").exists()


def test_nce_noise_distribution_stays_float32_under_half():
    """`.half()` on a model holding an NCELoss keeps its noise distribution in float32:
    probabilities below float16's smallest (here 1e-9) would become 0 and fail the check
    that every target has noise mass."""
    from softmetrics import NCELoss

    q = torch.full((1000,), 1e-9, dtype=torch.float32)
    q[0] = 1.0 - q[1:].sum()
    loss_fn = NCELoss(num_classes=1000, num_noise=5, noise_distribution=q).half()
    assert loss_fn.noise_distribution.dtype == torch.float32
    torch.testing.assert_close(loss_fn.noise_distribution, q, rtol=0, atol=0)
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(4, 8, generator=g).half()
    weight, bias = torch.randn(1000, 8, generator=g).half(), torch.zeros(1000).half()
    out = loss_fn(hidden, torch.tensor([3, 999, 0, 500]), weight, bias,
                  generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(out)


def test_learned_temperature_is_bounded_below_and_reprs_show_it_as_given():
    q, k = _randn(8, 4, seed=60), _randn(8, 4, seed=61)
    mod = InfoNCELoss(temperature=0.07, learn_temperature=True, min_temperature=0.01)
    with torch.no_grad():
        mod.log_temperature.fill_(math.log(1e-4))  # an optimiser step past the bound
    torch.testing.assert_close(mod.temperature.detach(), torch.tensor(0.01))
    loss = mod(q, k)
    torch.testing.assert_close(loss, info_nce(q, k, temperature=0.01))
    loss.backward()
    # at the bound the temperature is a constant, as CLIP's clamped logit scale
    assert mod.log_temperature.grad.item() == 0.0
    with torch.no_grad():
        mod.log_temperature.fill_(math.log(0.5))
    mod.zero_grad()
    mod(q, k).backward()
    assert mod.log_temperature.grad.item() != 0.0
    assert "temperature=0.07," in repr(InfoNCELoss(temperature=0.07, learn_temperature=True))
    assert "temperature=0.07," in repr(InfoNCELoss(temperature=0.07))
    assert "min_temperature=0.01" in repr(InfoNCELoss(learn_temperature=True))
    with pytest.raises(ValueError, match=r"InfoNCELoss: expected `min_temperature` to be > 0"):
        InfoNCELoss(learn_temperature=True, min_temperature=0.0)
    with pytest.raises(ValueError, match=r"InfoNCELoss: expected `temperature` to be >= "
                                         r"min_temperature = 0.1"):
        InfoNCELoss(temperature=0.05, learn_temperature=True, min_temperature=0.1)


def test_contrastive_module_reprs_show_their_options():
    """The repr names every option that changes the loss, the gather only when it is on
    and never the process group; a learned value is shown as it is now."""
    assert repr(InfoNCELoss()) == (
        "InfoNCELoss(temperature=0.07, in_batch_negatives=True, query_negatives=False, "
        "normalize=True, validate_args=True, symmetric=False, reduction='mean')")
    assert repr(InfoNCELoss(learn_temperature=True, gather_distributed=True)) == (
        "InfoNCELoss(temperature=0.07, in_batch_negatives=True, query_negatives=False, "
        "normalize=True, gather_distributed=True, validate_args=True, symmetric=False, "
        "reduction='mean', learn_temperature=True, min_temperature=0.01)")
    assert repr(SigLIPLoss()) == (
        "SigLIPLoss(logit_scale=10.0, logit_bias=-10.0, normalize=True, reduction='mean', "
        "validate_args=True, learnable=True, max_logit_scale=100.0)")
    assert repr(SigLIPLoss(learnable=False, gather_distributed="ring")) == (
        "SigLIPLoss(logit_scale=10.0, logit_bias=-10.0, normalize=True, reduction='mean', "
        "gather_distributed='ring', validate_args=True)")


def test_initial_values_at_their_bounds_are_accepted():
    # a learned temperature may start at its floor, a logit scale anywhere above 0
    mod = InfoNCELoss(temperature=0.05, learn_temperature=True, min_temperature=0.05)
    assert mod.temperature.item() == pytest.approx(0.05)
    assert SigLIPLoss(logit_scale=0.5).logit_scale.item() == pytest.approx(0.5)
    assert SigLIPLoss(logit_scale=0.5, learnable=False).logit_scale == 0.5
    assert SigLIPLoss(logit_scale=100.0).logit_scale.item() == pytest.approx(100.0)
    small = SigLIPLoss(logit_scale=0.25, max_logit_scale=0.5)
    assert small.logit_scale.item() == pytest.approx(0.25)
    for kw, name in ((dict(logit_scale=0.0), "logit_scale"),
                     (dict(max_logit_scale=0.0, learnable=False), "max_logit_scale")):
        with pytest.raises(ValueError, match=rf"SigLIPLoss: expected `{name}` to be > 0"):
            SigLIPLoss(**kw)


def test_no_candidate_besides_the_positive_raises():
    q, k = _randn(4, 3, seed=62), _randn(4, 3, seed=63)
    match = (r"info_nce: expected `negatives` to be given when in_batch_negatives=False "
             r"and query_negatives=False \(the positive would be the only candidate\), "
             r"got None\.")
    with pytest.raises(ValueError, match=match):
        info_nce(q, k, in_batch_negatives=False)
    with pytest.raises(ValueError, match=match):
        info_nce(q, k, in_batch_negatives=False, symmetric=True)
    with pytest.raises(ValueError, match=r"info_nce: expected `negatives` to be given"):
        info_nce(q, k, in_batch_negatives=False, negatives=torch.randn(0, 3))
    with pytest.raises(ValueError, match=r"info_nce: expected `negatives` to be given"):
        info_nce(q, k, in_batch_negatives=False, negatives=torch.randn(4, 0, 3))
    with pytest.raises(ValueError, match=r"InfoNCELoss: expected `negatives` to be given"):
        InfoNCELoss(in_batch_negatives=False)(q, k)
    # with candidates it runs
    assert info_nce(q, k, in_batch_negatives=False, negatives=torch.randn(2, 3)) > 0
    assert info_nce(q, k, in_batch_negatives=False, query_negatives=True) > 0


@pytest.mark.parametrize("bad", ["query", "key", "negatives"])
def test_non_finite_embeddings_raise_or_give_nan(bad):
    args = dict(query=_randn(4, 3, seed=64), key=_randn(4, 3, seed=65),
                negatives=_randn(2, 3, seed=66))
    for value in (float("nan"), float("inf")):
        given = dict(args)
        given[bad] = args[bad].clone().index_put_((torch.tensor(1), torch.tensor(0)),
                                                  torch.tensor(value))
        for fn in (info_nce, retrieval_accuracy):
            with pytest.raises(ValueError, match=rf"{fn.__name__}: expected `{bad}` to be "
                                                 r"finite"):
                fn(**given)
    nan = dict(args)
    nan[bad] = args[bad].clone().index_put_((torch.tensor(1), torch.tensor(0)),
                                            torch.tensor(float("nan")))
    for chunk in (None, 2):
        assert torch.isnan(info_nce(**nan, chunk_size=chunk, validate_args=False))
    assert torch.isnan(retrieval_accuracy(**nan, validate_args=False))
    if bad == "negatives":  # per-query negatives too
        per_query = torch.randn(4, 2, 3)
        per_query[2, 1, 0] = float("nan")
        assert torch.isnan(retrieval_accuracy(args["query"], args["key"], negatives=per_query,
                                              validate_args=False))


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_nce_non_finite_inputs_raise_or_give_nan(bad):
    names = ["input", "weight", "bias"]
    x, w, b = torch.randn(3, 2), torch.randn(5, 2), torch.zeros(5)
    t = torch.tensor([0, 1, 4])
    for value in (float("nan"), float("inf")):
        args = [x.clone(), w.clone(), b.clone()]
        args[bad].view(-1)[0] = value  # row 0 of the output layer: the first target
        with pytest.raises(ValueError, match=rf"nce_loss: expected `{names[bad]}` to be "
                                             r"finite"):
            nce_loss(args[0], t, args[1], args[2], num_noise=2)
        with pytest.raises(ValueError, match=rf"expected `{names[bad]}` to be finite"):
            NCELoss(5, 2)(args[0], t, args[1], args[2])
    args[bad].view(-1)[0] = float("nan")
    for shared in (False, True):
        assert torch.isnan(nce_loss(args[0], t, args[1], args[2], num_noise=2,
                                    shared_noise=shared, validate_args=False))


def test_dtype_messages_name_what_each_tensor_is():
    q, k = torch.randn(4, 3), torch.randn(4, 3)
    ints = torch.ones(4, 3, dtype=torch.long)
    for name, args in [("query", (ints, k)), ("key", (q, ints))]:
        with pytest.raises(TypeError, match=rf"info_nce: expected `{name}` to be a "
                                            r"floating-point tensor \(embeddings\), got "
                                            r"torch.int64\."):
            info_nce(*args)
    with pytest.raises(TypeError, match=r"expected `negatives` to be a floating-point tensor "
                                        r"\(embeddings\)"):
        info_nce(q, k, negatives=ints)
    x, w, b, t = torch.randn(3, 2), torch.randn(5, 2), torch.zeros(5), torch.tensor([0, 1, 4])
    for name, args in [("input", (x.long(), t, w, b)), ("weight", (x, t, w.long(), b)),
                       ("bias", (x, t, w, b.long()))]:
        what = {"input": "hidden states", "weight": "the output layer's weights",
                "bias": "the output layer's biases"}[name]
        with pytest.raises(TypeError, match=rf"nce_loss: expected `{name}` to be a "
                                            rf"floating-point tensor \({what}\)"):
            nce_loss(*args, num_noise=2)
    with pytest.raises(TypeError, match=r"expected `noise_distribution` to be a floating-point "
                                        r"tensor \(class probabilities\)"):
        nce_loss(x, t, w, b, num_noise=2, noise_distribution=torch.ones(5, dtype=torch.long))
    with pytest.raises(TypeError, match=r"NCELoss: expected `noise_distribution` to be a "
                                        r"floating-point tensor \(class probabilities\)"):
        NCELoss(5, 2, torch.ones(5, dtype=torch.long))
    with pytest.raises(TypeError, match=r"mutual_information_bound: expected `loss` to be a "
                                        r"floating-point tensor \(the InfoNCE loss in nats\)"):
        mutual_information_bound(torch.tensor(1), 4)


def test_mutual_information_bound_of_numbers_and_per_query_counts():
    """log N - L for a number or a tensor loss, and for a tensor of candidate counts (one
    per query); a result in the loss's dtype, or the default dtype for a number."""
    got = mutual_information_bound(1.5, 128)
    assert got.dtype == torch.get_default_dtype()
    assert float(got) == pytest.approx(math.log(128) - 1.5)
    loss = torch.tensor([0.5, 2.0], dtype=torch.float64)
    counts = torch.tensor([4, 64])
    torch.testing.assert_close(mutual_information_bound(loss, counts),
                               torch.log(counts.double()) - loss)
    half = mutual_information_bound(loss.half(), counts)
    assert half.dtype == torch.float16
    torch.testing.assert_close(mutual_information_bound(1.0, counts),
                               torch.log(counts.float()) - 1.0)
    for bad in (True, "1.0", None):
        with pytest.raises(TypeError, match=r"^mutual_information_bound: expected `loss` to "
                                            rf"be a tensor or a real number, got "
                                            rf"{type(bad).__name__}\.$"):
            mutual_information_bound(bad, 4)


def test_tensor_temperatures_and_scales_must_be_positive():
    q, k = _randn(4, 3, seed=70), _randn(4, 3, seed=71)
    for value in (0.0, -0.5, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"^info_nce: expected `temperature` to be "
                                             r"finite and > 0"):
            info_nce(q, k, temperature=torch.tensor(value))
        with pytest.raises(ValueError, match=r"^sigmoid_contrastive_loss: expected "
                                             r"`logit_scale` to be finite and > 0"):
            sigmoid_contrastive_loss(q, k, logit_scale=torch.tensor(value))
    assert torch.isfinite(info_nce(q, k, temperature=torch.tensor(0.5)))


def test_retrieval_accuracy_compares_directions_by_default():
    # the first query's positive has the closer direction, the other key the larger dot
    # product: cosine similarity (the default) finds it, the plain dot product does not
    q = torch.tensor([[1.0, 0.2], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [0.5, 10.0]])
    torch.testing.assert_close(retrieval_accuracy(q, k, reduction="none"),
                               torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(retrieval_accuracy(q, k, normalize=False, reduction="none"),
                               torch.tensor([0.0, 1.0]))


def test_retrieval_accuracy_and_the_exact_nll_ignore_autocast():
    """The exact metrics keep their float32 products under autocast, as the losses do: a
    bfloat16 product would round scores into ties that are not there."""
    g = torch.Generator().manual_seed(0)
    q = torch.randn(512, 64, generator=g)
    k = q + 3.0 * torch.randn(512, 64, generator=g)
    exact = retrieval_accuracy(q, k, reduction="none")
    h, w, b = torch.randn(64, 32, generator=g), torch.randn(300, 32, generator=g), None
    y = torch.randint(0, 300, (64,), generator=g)
    nll = NCELoss(300, 5, reduction="none").metric(h, y, w, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(retrieval_accuracy(q, k, reduction="none"), exact,
                                   rtol=0, atol=0)
        torch.testing.assert_close(NCELoss(300, 5, reduction="none").metric(h, y, w, b),
                                   nll, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_nce_takes_every_integer_target_dtype(dtype):
    """Class ids of any integer dtype index the output layer as int64 ids do (a uint8
    tensor must not become a boolean mask)."""
    g = torch.Generator().manual_seed(0)
    h, w, b = torch.randn(3, 4, generator=g), torch.randn(5, 4, generator=g), torch.randn(5)
    y = torch.tensor([0, 0, 2])
    kw = dict(num_noise=2, reduction="none")
    want = nce_loss(h, y, w, b, generator=torch.Generator().manual_seed(1), **kw)
    got = nce_loss(h, y.to(dtype), w, b, generator=torch.Generator().manual_seed(1), **kw)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    module = NCELoss(5, 2, reduction="none")
    torch.testing.assert_close(module.metric(h, y.to(dtype), w, b), module.metric(h, y, w, b))
    q = torch.softmax(torch.randn(5, generator=g), 0)  # the check at the targets, too
    want = nce_loss(h, y, w, b, noise_distribution=q,
                    generator=torch.Generator().manual_seed(1), **kw)
    got = nce_loss(h, y.to(dtype), w, b, noise_distribution=q,
                   generator=torch.Generator().manual_seed(1), **kw)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_nce_takes_a_half_precision_noise_distribution(dtype):
    """A distribution rounded to half precision sums to 1 only up to that precision."""
    g = torch.Generator().manual_seed(0)
    h, w = torch.randn(2, 4, generator=g), torch.randn(1000, 4, generator=g)
    zipf = 1.0 / torch.arange(1, 1001, dtype=torch.float64)
    for q in (torch.full((1000,), 1e-3), zipf / zipf.sum()):
        loss = nce_loss(h, torch.tensor([0, 1]), w, None, num_noise=2,
                        noise_distribution=q.to(dtype))
        assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="summing to 1"):
        nce_loss(h, torch.tensor([0, 1]), w, None, num_noise=2,
                 noise_distribution=torch.full((1000,), 2e-3, dtype=dtype))


@pytest.mark.parametrize("bad", [0, -3])
def test_mutual_information_bound_checks_a_tensor_count(bad):
    with pytest.raises(ValueError, match="num_candidates"):
        mutual_information_bound(torch.tensor(1.5), torch.tensor(bad))
    with pytest.raises(ValueError, match="num_candidates"):
        mutual_information_bound(1.5, bad)


def test_a_nan_logit_bias_tensor_is_refused():
    q, k = _randn(3, 4, seed=1), _randn(3, 4, seed=2)
    with pytest.raises(ValueError, match="logit_bias"):
        sigmoid_contrastive_loss(q, k, logit_bias=torch.tensor(float("nan")))
    assert torch.isfinite(sigmoid_contrastive_loss(q, k, logit_bias=torch.tensor(-5.0)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalize_rows_is_f_normalize_with_a_shorter_backward(dtype):
    """The untiled InfoNCE and sigmoid losses normalise their embeddings with
    `normalize_rows`: F.normalize's value bit for bit, its gradient to rounding, also for a
    zero row, rows below the floor `NORM_EPS` and one exactly at it (where the gradient
    goes through the norm, as F.normalize's up to torch 2.13; from 2.14 F.normalize's
    does not, see test_clamp_gradients.py), with second derivatives; its backward makes
    five operations where autograd's of F.normalize makes many more."""
    from .allocations import Operations

    eps = _infonce_tiles.NORM_EPS
    x = _randn(9, 5, seed=3, dtype=dtype)
    x[1] = 0.0
    x[2] *= 1e-14 / x[2].norm()
    x[3] = torch.tensor([eps, 0.0, 0.0, 0.0, 0.0], dtype=dtype)
    g = _randn(9, 5, seed=4, dtype=dtype)
    ours = x.clone().requires_grad_()
    plain = x.clone().requires_grad_()
    y = _infonce_tiles.normalize_rows(ours)
    want = F.normalize(plain, dim=1, eps=eps)
    assert torch.equal(y, want)
    with Operations() as ops:
        (grad,) = torch.autograd.grad(y, ours, g)
    (expected,) = torch.autograd.grad(want, plain, g)
    reference = x.clone().requires_grad_()
    (at_floor,) = torch.autograd.grad(_infonce_tiles.normalized(reference), reference, g)
    expected[3] = at_floor[3]  # the row exactly at the floor: see the docstring
    # to rounding relative to each row's gradient, which is of size 1 / eps below the floor
    scale = expected.abs().amax(1, keepdim=True).clamp_min(1.0)
    error = ((grad - expected).abs() / scale).max()
    assert error <= (1e-13 if dtype == torch.float64 else 1e-6), error
    again = F.normalize(plain, dim=1, eps=eps)
    with Operations() as plain_ops:
        torch.autograd.grad(again, plain, g)
    # torch 2.1's autograd engine also dispatches its own `is_same_size` check
    ours_ops, theirs = ([n for n in o.names if n != "is_same_size"] for o in (ops, plain_ops))
    assert len(ours_ops) == 5 < len(theirs) - 5, (ours_ops, theirs)
    if dtype == torch.float64:
        z = _randn(4, 3, seed=5, dtype=dtype, requires_grad=True)
        assert torch.autograd.gradcheck(_infonce_tiles.normalize_rows, (z,))
        assert torch.autograd.gradgradcheck(_infonce_tiles.normalize_rows, (z,))
