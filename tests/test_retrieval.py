"""Tests of the retrieval metrics: NDCG, recall@k, precision@k, reciprocal rank and AP per
query, against scikit-learn, torchmetrics, textbook loops and enumerated tie orders."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import average_precision_score, ndcg_score

from softmetrics import (
    SoftMRRLoss,
    SoftNDCGLoss,
    SoftPrecisionAtKLoss,
    SoftRecallAtKLoss,
    SoftRetrievalAPLoss,
)
from softmetrics.functional import (
    _ranking_tiles,
    retrieval_accuracy,
    soft_average_precision,
    soft_ndcg,
    soft_precision_at_k,
    soft_recall_at_k,
    soft_reciprocal_rank,
    soft_retrieval_average_precision,
)

from .listing import list_positives
from .retrieval_references import mean_over_tie_orders, per_row, textbook

FUNCTIONS = {
    "ndcg": soft_ndcg,
    "recall": soft_recall_at_k,
    "precision": soft_precision_at_k,
    "rr": soft_reciprocal_rank,
    "ap": soft_retrieval_average_precision,
}
LOSSES = {
    "ndcg": SoftNDCGLoss,
    "recall": SoftRecallAtKLoss,
    "precision": SoftPrecisionAtKLoss,
    "rr": SoftMRRLoss,
    "ap": SoftRetrievalAPLoss,
}
AT_K = {"ndcg": None, "recall": 2, "precision": 2, "rr": None, "ap": None}


def _call(name, s, y, k=None, **kw):
    if name != "ap":
        kw["k"] = AT_K[name] if k is None and name in ("recall", "precision") else k
    return FUNCTIONS[name](s, y, **kw)


# ---------------------------------------------------------------------------------------
# strategies


@st.composite
def matrix_case(draw, *, distinct: bool, graded: bool = False, max_q: int = 4,
                min_g: int = 1, max_g: int = 9):
    """(scores float64 (Q, G), relevance int64 (Q, G)); ties allowed unless `distinct`."""
    q = draw(st.integers(1, max_q))
    g = draw(st.integers(min_g, max_g))
    if distinct:
        values = draw(st.lists(st.integers(-1000, 1000), min_size=q * g, max_size=q * g,
                               unique=True))
        scores = np.asarray(values, dtype=np.float64).reshape(q, g) / 97.0
    else:
        scores = draw(arrays(np.float64, (q, g),
                             elements=st.sampled_from([-1.0, 0.0, 0.5, 2.0])))
    rel = draw(arrays(np.int64, (q, g), elements=st.integers(0, 3 if graded else 1)))
    return torch.from_numpy(scores), torch.from_numpy(rel)


# ---------------------------------------------------------------------------------------
# exactness at temperature 0


@pytest.mark.parametrize("k", [None, 1, 3])
@given(case=matrix_case(distinct=False, graded=True, min_g=2))  # scikit-learn: G >= 2
def test_ndcg_equals_sklearn_with_ties(case, k):
    s, y = case
    got = soft_ndcg(s, y, k=k, temperature=0, reduction="none")
    expected = per_row(lambda a, b: ndcg_score([b], [a], k=k), s.tolist(), y.tolist())
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    defined = (y > 0).any(1)
    mean = soft_ndcg(s, y, k=k, temperature=0)
    expected_mean = np.mean(np.asarray(expected)[defined.numpy()]) if defined.any() else 0.0
    assert mean.item() == pytest.approx(expected_mean, abs=1e-12)


@given(case=matrix_case(distinct=True, graded=True, min_g=2))
def test_ndcg_exponential_gain_equals_sklearn_on_transformed_grades(case):
    s, y = case
    got = soft_ndcg(s, y, k=3, gain="exponential", temperature=0, reduction="none")
    gains = (2.0 ** y.double() - 1).tolist()
    expected = per_row(lambda a, b: ndcg_score([b], [a], k=3), s.tolist(), gains)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("name", ["recall", "precision", "rr", "ap", "ndcg"])
@pytest.mark.parametrize("k", [None, 1, 3])
@given(case=matrix_case(distinct=True))
def test_textbook_definitions_for_distinct_scores(case, name, k):
    s, y = case
    if name in ("recall", "precision") and k is None:
        k = 2
    if name == "ap" and k is not None:
        return
    got = _call(name, s, y, k=k, temperature=0, reduction="none")
    expected = per_row(lambda a, b: textbook(name, a, b, k), s.tolist(), y.tolist())
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("name", ["recall", "precision", "rr", "ndcg"])
@given(case=matrix_case(distinct=False, graded=True, max_q=2, max_g=6),
       k=st.sampled_from([None, 1, 2, 4]))
def test_ties_average_over_every_order_of_the_tied_items(case, name, k):
    s, y = case
    if name != "ndcg":
        y = (y > 1).long()
    if name in ("recall", "precision") and k is None:
        k = 3
    got = _call(name, s, y, k=k, temperature=0, reduction="none")
    expected = per_row(lambda a, b: mean_over_tie_orders(name, a, b, k), s.tolist(),
                       y.tolist())
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


@given(case=matrix_case(distinct=True))
def test_ap_equals_sklearn_for_distinct_scores(case):
    s, y = case
    got = soft_retrieval_average_precision(s, y, temperature=0, reduction="none")
    expected = per_row(lambda a, b: average_precision_score(b, a), s.tolist(), y.tolist())
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("temperature", [0, 0.3])
@given(case=matrix_case(distinct=False))
def test_ap_is_the_ranking_familys_ap_per_query(case, temperature):
    s, y = case
    q = s.shape[0]
    got = soft_retrieval_average_precision(s, y, temperature=temperature, reduction="none")
    columns = soft_average_precision(s.T, y.T, task="multilabel", num_classes=q,
                                     average="none", temperature=temperature)
    np.testing.assert_allclose(got.numpy(), columns.numpy(), atol=1e-12)


def test_hand_derived_case():
    # one query, ranking P N P N: recall@2 = 1/2, precision@2 = 1/2, RR = 1,
    # AP = (1 + 2/3) / 2, NDCG = (1 + 1/2) / (1 + 1/log2(3)); ties: N and P tied at the top
    # give RR = (1/1 + 1/2) / 2
    s = torch.tensor([[4.0, 3.0, 2.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([[1, 0, 1, 0]])
    assert soft_recall_at_k(s, y, k=2, temperature=0).item() == pytest.approx(0.5)
    assert soft_precision_at_k(s, y, k=2, temperature=0).item() == pytest.approx(0.5)
    assert soft_reciprocal_rank(s, y, temperature=0).item() == pytest.approx(1.0)
    assert soft_retrieval_average_precision(s, y, temperature=0).item() == pytest.approx(5 / 6)
    ideal = 1 + 1 / np.log2(3)
    assert soft_ndcg(s, y, temperature=0).item() == pytest.approx(1.5 / ideal)
    tied = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    assert soft_reciprocal_rank(tied, torch.tensor([[0, 1, 0]]), temperature=0).item() == \
        pytest.approx(0.75)
    # soft recall@1 of one relevant item against one other: sigmoid((1.5 - R) / tau) with
    # R = 1 + sigmoid((s_j - s_i) / tau)
    tau = 0.5
    r = 1 + 1 / (1 + np.exp(-(0.2 - 1.0) / tau))
    value = soft_recall_at_k(torch.tensor([[1.0, 0.2]], dtype=torch.float64),
                             torch.tensor([[1, 0]]), k=1, temperature=tau)
    assert value.item() == pytest.approx(1 / (1 + np.exp(-(1.5 - r) / tau)), abs=1e-14)


@given(case=matrix_case(distinct=False, max_g=7), k=st.integers(1, 4))
def test_recall_of_one_relevant_item_is_retrieval_accuracy(case, k):
    """Retrieval accuracy and recall@k share their tie rule: with one relevant item per
    query, they are the same number, ties included."""
    s, _ = case
    q, g = s.shape
    assume(g >= q)
    y = torch.eye(q, g, dtype=torch.long)
    # scores as dot products: query i is the unit vector e_i, gallery item j has the
    # column s[:, j] as embedding; in-batch keys are items 0..q-1, the rest negatives
    items = s.T.contiguous()  # (G, Q)
    query = torch.eye(q, dtype=torch.float64)
    acc = retrieval_accuracy(query, items[:q], negatives=items[q:] if g > q else None,
                             k=k, normalize=False, reduction="none")
    recall = soft_recall_at_k(s, y, k=k, temperature=0, reduction="none")
    np.testing.assert_allclose(recall.numpy(), acc.numpy(), atol=1e-12)


# ---------------------------------------------------------------------------------------
# torchmetrics: the same numbers on positive scores, a documented difference otherwise


@pytest.mark.parametrize("name", ["recall", "precision", "rr", "ndcg", "ap"])
@given(case=matrix_case(distinct=True, graded=False))
def test_torchmetrics_agrees_on_positive_scores(case, name):
    R = pytest.importorskip("torchmetrics.functional.retrieval")
    s, y = case
    s = s - s.min() + 0.5  # every score > 0: torchmetrics retrieves every item
    fns = {"recall": R.retrieval_recall, "precision": R.retrieval_precision,
           "rr": R.retrieval_reciprocal_rank, "ndcg": R.retrieval_normalized_dcg,
           "ap": R.retrieval_average_precision}
    k = {"recall": 2, "precision": 2}.get(name)
    got = _call(name, s, y, k=k, temperature=0, reduction="none")
    for q in range(s.shape[0]):
        if y[q].sum() == 0:
            continue
        kw = {"top_k": k} if k is not None else {}
        expected = fns[name](s[q], y[q], **kw)
        assert got[q].item() == pytest.approx(expected.item(), abs=1e-6)


def test_torchmetrics_counts_only_positive_scores_as_retrieved():
    R = pytest.importorskip("torchmetrics.functional.retrieval")
    s = torch.tensor([-0.1, -0.5, -0.9])
    y = torch.tensor([1, 0, 0])
    assert R.retrieval_recall(s, y, top_k=1).item() == 0.0  # the top item, not retrieved
    assert soft_recall_at_k(s[None], y[None], k=1, temperature=0).item() == 1.0
    assert R.retrieval_reciprocal_rank(s, y).item() == 0.0
    assert soft_reciprocal_rank(s[None], y[None], temperature=0).item() == 1.0


# ---------------------------------------------------------------------------------------
# undefined queries, ignore_index, reductions


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_queries_without_relevant_items_are_left_out(name):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 6, generator=g, dtype=torch.float64)
    y = torch.tensor([[1, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 1, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        per_query = _call(name, s, y, temperature=0.5, reduction="none")
        mean = _call(name, s, y, temperature=0.5)
        total = _call(name, s, y, temperature=0.5, reduction="sum")
    assert per_query[1].item() == 0.0
    assert mean.item() == pytest.approx((per_query[0] + per_query[2]).item() / 2, abs=1e-12)
    assert total.item() == pytest.approx(per_query.sum().item(), abs=1e-12)
    x = s.clone().requires_grad_(True)
    value = _call(name, x, torch.zeros_like(y), temperature=0.5)
    assert value.item() == 0.0
    value.backward()
    assert torch.isfinite(x.grad).all()
    loss = LOSSES[name](temperature=0.5, **({"k": 2} if name in ("recall", "precision")
                                            else {}))
    assert loss(s, torch.zeros_like(y)).item() == 0.0  # nothing to learn, no constant


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("temperature", [0, 0.5])
def test_a_query_of_one_item_is_scored(name, temperature):
    """A single relevant item is at the top: every metric is 1 (precision@k of k = 1), where
    scikit-learn's `ndcg_score` refuses a one-item query. Soft NDCG, RR and AP stay 1; the
    soft cutoff of recall@k and precision@k places the item within the top 1 with the
    probability sigmoid((k - 1/2 - 0) / tau). A single irrelevant item is a query without a
    relevant item (no value)."""
    s = torch.tensor([[0.3], [-2.0]], dtype=torch.float64)
    y = torch.tensor([[1], [0]])
    kw = {"k": 1} if name in ("recall", "precision") else {}
    one = 1.0
    if temperature and name in ("recall", "precision"):
        one = torch.sigmoid(torch.tensor(0.5 / temperature, dtype=torch.float64)).item()
    per_query = _call(name, s, y, temperature=temperature, reduction="none", **kw)
    assert per_query.tolist() == pytest.approx([one, 0.0], abs=1e-15)
    assert _call(name, s, y, temperature=temperature, **kw).item() == pytest.approx(one)


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("temperature", [0, 0.4])
@pytest.mark.parametrize("fill", [float("-inf"), float("inf"), float("nan")])
def test_ignored_items_are_padding_whose_scores_are_never_read(name, temperature, fill):
    """Galleries of different lengths are padded to one width and the padding marked with
    `ignore_index`; a padded slot's score is often `-inf` (a masked fill) or garbage. Its
    score is never read: any value gives the values and gradients of a finite one, with
    or without validation (which checks the kept scores only)."""
    g = torch.Generator().manual_seed(4)
    s = torch.randn(3, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2 if name != "ndcg" else 3, (3, 6), generator=g)
    y[:, 0] = 1
    y[0, 4:] = -1
    y[2, 2:] = -1
    results = []
    for pad in (0.0, fill):
        x = torch.where(y == -1, pad, s).requires_grad_()
        for validate in (True, False):
            value = _call(name, x, y, temperature=temperature, ignore_index=-1,
                          reduction="none", validate_args=validate)
            (grad,) = torch.autograd.grad(value.sum(), x) if temperature else (None,)
            results.append((value, grad))
    for value, grad in results[1:]:
        torch.testing.assert_close(value, results[0][0], rtol=0, atol=1e-12)
        if grad is not None:
            torch.testing.assert_close(grad, results[0][1], rtol=0, atol=1e-12)
    # a non-finite score that counts is still refused, or reaches the result
    x = torch.where(y == -1, 0.0, s)
    x[1, 1] = fill
    with pytest.raises(ValueError, match="finite"):
        _call(name, x, y, temperature=temperature, ignore_index=-1)


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("temperature", [0, 0.4])
def test_ignore_index_equals_dropping_the_items(name, temperature):
    g = torch.Generator().manual_seed(1)
    s = torch.randn(4, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2 if name != "ndcg" else 3, (4, 8), generator=g)
    y[:, 0] = 1
    ignored = y.clone()
    ignored[:, 5] = -1
    a = _call(name, s, ignored, ignore_index=-1, temperature=temperature, reduction="none")
    b = _call(name, torch.cat([s[:, :5], s[:, 6:]], 1), torch.cat([y[:, :5], y[:, 6:]], 1),
              temperature=temperature, reduction="none")
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-12)
    # the self-match of a gallery made of the queries: the diagonal, one item per row
    sq = torch.randn(5, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1])
    same = (labels[:, None] == labels[None]).long()
    target = same.masked_fill(torch.eye(5, dtype=torch.bool), -1)
    got = _call(name, sq, target, ignore_index=-1, temperature=temperature, reduction="none")
    for q in range(5):
        keep = torch.arange(5) != q
        one = _call(name, sq[q:q + 1, keep], same[q:q + 1, keep], temperature=temperature)
        assert got[q].item() == pytest.approx(one.item(), abs=1e-12)


# ---------------------------------------------------------------------------------------
# properties of the soft metrics


@pytest.mark.parametrize("name", list(FUNCTIONS))
@given(case=matrix_case(distinct=True, graded=True))
def test_soft_tends_to_hard(case, name):
    s, y = case  # distinct scores at least 1/97 apart
    if name != "ndcg":
        y = (y > 1).long()
    hard = _call(name, s, y, temperature=0, reduction="none")
    errors = [(_call(name, s, y, temperature=t, reduction="none") - hard).abs().max().item()
              for t in (1e-1, 1e-3, 1e-5)]
    assert errors[-1] < 1e-9  # every |s_i - s_j| / tau >= 1000
    assert errors[1] < 1e-2


@pytest.mark.parametrize("k, gain", [(2, "linear"), (None, "exponential"),
                                     (3, "exponential")])
@given(case=matrix_case(distinct=True, graded=True))
def test_soft_ndcg_at_k_and_exponential_gain_tend_to_hard(case, k, gain):
    """The soft cut at k and the exponential gain converge too (`test_soft_tends_to_hard`
    takes the plain NDCG)."""
    s, y = case
    hard = soft_ndcg(s, y, k=k, gain=gain, temperature=0, reduction="none")
    errors = [(soft_ndcg(s, y, k=k, gain=gain, temperature=t, reduction="none") - hard)
              .abs().max().item() for t in (1e-1, 1e-3, 1e-5)]
    assert errors[-1] < 1e-9
    assert errors[1] < 1e-2


@pytest.mark.parametrize("name", list(FUNCTIONS))
@given(case=matrix_case(distinct=False, graded=True), temperature=st.floats(1e-3, 100.0),
       chunk=st.integers(1, 7), cutoff=st.sampled_from([None, 0.5, 3.0]))
def test_range_and_tiles(case, name, temperature, chunk, cutoff):
    s, y = case
    if name != "ndcg":
        y = (y > 1).long()
    kw = {} if name == "ap" else {"cutoff_temperature": cutoff}
    x = s.clone().requires_grad_(True)
    tiled = _call(name, x, y, temperature=temperature, chunk_size=chunk, reduction="none",
                  **kw)
    assert ((tiled >= 0) & (tiled <= 1 + 1e-12)).all()
    (g_tiled,) = torch.autograd.grad(tiled.sum(), x)
    untiled = _call(name, x, y, temperature=temperature, reduction="none", **kw)
    (g_untiled,) = torch.autograd.grad(untiled.sum(), x)
    torch.testing.assert_close(tiled, untiled, atol=1e-12, rtol=0)
    torch.testing.assert_close(g_tiled, g_untiled, atol=1e-12, rtol=0)
    assert torch.isfinite(g_tiled).all()


def test_soft_ndcg_at_k_stays_at_most_one_at_high_temperatures():
    """At temperature 10 the soft cut at k = 1 gives every one of 17 items a share of the
    top position, and the soft DCG held up to 1.35 times the ideal one (found by the
    random-example run); the value is capped at 1, as precision@k's is."""
    x = torch.tensor([[-2., 0, -1, 1, -1, -1, -1, -1, -1, 2, 0, 2, 1, -1, 0, 0, 0],
                      [-1., -1, -1, 0, 0, 0, -1, 1, 0, -1, -2, -1, 1, 0, -1, 0, 1],
                      [0., -1, -1, 3, 1, 1, -1, 1, 0, 0, 0, 1, 1, 0, -1, 1, 0]],
                     requires_grad=True)
    y = torch.tensor([[0, 1, 2, 0, 2, 0, 1, 3, 2, 2, 1, 0, 3, 1, 1, 3, 0],
                      [2, 2, 3, 2, 3, 3, 3, 2, 1, 2, 2, 3, 2, 3, 3, 2, 2],
                      [3, 0, 1, 2, 3, 2, 1, 2, 1, 0, 2, 2, 3, 0, 3, 2, 3]])
    for k in (1, None):
        value = soft_ndcg(x, y, temperature=10.0, k=k, reduction="none")
        assert ((value >= 0) & (value <= 1)).all()
        (grad,) = torch.autograd.grad(value.sum(), x)
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", ["recall", "precision", "rr", "ap"])
@given(case=matrix_case(distinct=False), delta=st.floats(1e-3, 5.0),
       temperature=st.sampled_from([0.05, 0.5, 2.0]), pick=st.integers(0, 100))
def test_raising_a_relevant_item_never_lowers_the_soft_metric(case, name, delta,
                                                              temperature, pick):
    s, y = case
    positives = torch.nonzero(y == 1)
    assume(len(positives) > 0)
    q, i = positives[pick % len(positives)].tolist()
    raised = s.clone()
    raised[q, i] += delta
    before = _call(name, s, y, temperature=temperature, reduction="none")[q].item()
    after = _call(name, raised, y, temperature=temperature, reduction="none")[q].item()
    assert after >= before - 1e-12


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_extreme_inputs_are_finite(name, device):
    g = torch.Generator().manual_seed(5)
    y = torch.randint(0, 3 if name == "ndcg" else 2, (6, 20), generator=g).to(device)
    extreme = ((torch.randint(0, 2, (6, 20), generator=g) * 2 - 1) * 1e4).float()
    for scores in (extreme, torch.zeros(6, 20)):  # extremes, then all tied
        for temperature in (1e-3, 1.0):
            x = scores.to(device).requires_grad_(True)
            value = _call(name, x, y, temperature=temperature)
            value.backward()
            assert torch.isfinite(value) and torch.isfinite(x.grad).all()
            assert 0 <= value.item() <= 1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["ndcg", "recall"])
def test_half_inputs_accumulate_in_float32(dtype, name):
    g = torch.Generator().manual_seed(6)
    s = torch.randn(4, 30, generator=g)
    y = torch.randint(0, 2, (4, 30), generator=g)
    x = s.to(dtype).requires_grad_(True)
    value = _call(name, x, y, temperature=0.2)
    assert value.dtype == torch.float32
    value.backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad.float()).all()
    ref = _call(name, s.to(dtype).float(), y, temperature=0.2)
    assert value.item() == pytest.approx(ref.item(), abs=1e-6)


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("chunk", [None, 2])
def test_gradcheck_and_gradgradcheck_float64(name, chunk, device):
    g = torch.Generator().manual_seed(7)
    s = (torch.randperm(18, generator=g).double().reshape(3, 6) * 0.37).to(device)
    s.requires_grad_(True)
    y = torch.tensor([[1, 0, 2, 0, 1, 0], [0, 3, 0, 1, 0, 0], [2, 2, 0, 0, 1, 1]])
    if name != "ndcg":
        y = (y > 0).long()
    y = y.to(device)
    kw = {} if name == "ap" else {"cutoff_temperature": 1.5}

    def fn(x, tau=0.6):
        return _call(name, x, y, temperature=tau, chunk_size=chunk, reduction="none", **kw)

    assert torch.autograd.gradcheck(fn, (s,))
    assert torch.autograd.gradgradcheck(fn, (s,))
    t = torch.tensor(0.7, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (s, t))


@pytest.mark.parametrize("listed", [None, True, False],
                         ids=["every-item", "relevant-listed", "relevant-every-row"])
def test_tiled_function_with_levels_equals_full_matrix_autograd(listed, device, monkeypatch):
    """`NegativesAbove` with levels equals the full matrix, with its gradient: for every
    item, and given the relevant items, whose ranks alone are read, 0 elsewhere (graded
    relevance weighs every kept item, relevant ones too), with them listed (the CPU's
    default path; elsewhere with its synchronisation allowed) or not."""
    g = torch.Generator().manual_seed(8)
    u = torch.randn(4, 30, generator=g, dtype=torch.float64).requires_grad_(True)
    keep = (torch.rand(4, 30, generator=g) < 0.8).double()
    level = torch.randint(0, 3, (4, 30), generator=g).double()
    level[1] = 0  # a query with no relevant item
    up = torch.randn(4, 30, generator=g, dtype=torch.float64)
    full = (torch.sigmoid(u.unsqueeze(1) - u.unsqueeze(2)) * keep.unsqueeze(1)
            * (level.unsqueeze(1) != level.unsqueeze(2))).sum(-1)
    relevant = None
    if listed is not None:
        list_positives(monkeypatch, listed)
        relevant = (level > 0).double() * keep
        full = full * relevant
    (grad_full,) = torch.autograd.grad(full, u, up)
    for rows in (1, 4, 64):
        ud = u.detach().to(device).requires_grad_(True)
        tiled = _ranking_tiles.NegativesAbove.apply(
            ud, keep.to(device), rows, level.to(device),
            None if relevant is None else relevant.to(device))
        (grad_tiled,) = torch.autograd.grad(tiled, ud, up.to(device))
        torch.testing.assert_close(tiled.cpu(), full, atol=1e-12, rtol=0)
        torch.testing.assert_close(grad_tiled.cpu(), grad_full, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_listed_tiles_cover_the_rows_of_the_relevant_items(name, monkeypatch):
    """On the CPU each query's tiles run over the rows of its relevant items only: 3 rows
    for queries of 20 items with at most 3 relevant (binary or graded, some ignored),
    rather than 20."""
    seen = []
    tiles = _ranking_tiles._tiles_forward

    def spy(u, neg, rows, level, count, extent):
        seen.append(count)
        return tiles(u, neg, rows, level, count, extent)

    monkeypatch.setattr(_ranking_tiles, "_tiles_forward", spy)
    y = torch.zeros(2, 20, dtype=torch.long)
    y[0, [2, 7, 11]] = 2 if name == "ndcg" else 1
    y[1, 5], y[1, [0, 9]] = 1, -1
    _call(name, torch.randn(2, 20, dtype=torch.float64), y, k=None if name in ("ap", "rr")
          else 4, temperature=0.5, ignore_index=-1)
    assert seen == [3]


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_listing_the_relevant_items_changes_no_value_or_gradient(name, monkeypatch):
    """Every soft retrieval metric, graded targets for NDCG, with ignored items and a cut
    at k: the same values and gradients with the relevant items listed (the CPU's path)
    and with every pair computed (other devices')."""
    g = torch.Generator().manual_seed(10)
    s = torch.randn(5, 60, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3 if name == "ndcg" else 2, (5, 60), generator=g)
    y[2] = torch.where(torch.rand(60, generator=g) < 0.95, 0, y[2])  # few relevant
    y[torch.rand(5, 60, generator=g) < 0.1] = -1
    results = []
    for listed in (True, False):
        list_positives(monkeypatch, listed)
        x = s.clone().requires_grad_()
        value = _call(name, x, y, k=None if name in ("ap", "rr") else 7, temperature=0.3,
                      ignore_index=-1, chunk_size=8, reduction="none")
        results.append((value, *torch.autograd.grad(value.sum(), x)))
    torch.testing.assert_close(results[0], results[1], atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------
# Modules and errors


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_module_equals_function(name, reduction):
    g = torch.Generator().manual_seed(10)
    s = torch.randn(5, 7, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (5, 7), generator=g)
    y[2] = 0  # an undefined query
    options = {"k": 3} if name in ("recall", "precision") else {}
    loss_fn = LOSSES[name](temperature=0.4, reduction=reduction, **options)
    value = _call(name, s, y, temperature=0.4, reduction="none", **options)
    defined = y.sum(1) > 0
    per_query = torch.where(defined, 1 - value, torch.zeros_like(value))
    expected = {"none": per_query, "sum": per_query.sum(),
                "mean": per_query.sum() / defined.sum()}[reduction]
    torch.testing.assert_close(loss_fn(s, y), expected, atol=1e-12, rtol=0)
    exact = _call(name, s, y, temperature=0, reduction=reduction, **options)
    torch.testing.assert_close(loss_fn.metric(s, y), exact, atol=1e-12, rtol=0)
    assert not loss_fn.metric(s, y).requires_grad
    buffered = LOSSES[name](temperature=torch.tensor(0.5), **options)
    assert "temperature" in dict(buffered.named_buffers())
    learnable = LOSSES[name](temperature=torch.nn.Parameter(torch.tensor(0.5)), **options)
    learnable(s.float(), y).backward()
    assert learnable.temperature.grad is not None
    assert "reduction=" in repr(buffered)


def test_module_reprs_and_checks():
    """The reprs name the options that change the loss (the gain for NDCG only, never
    validate_args); the Modules check their data unless told not to."""
    assert repr(SoftNDCGLoss()) == "SoftNDCGLoss(gain='linear', temperature=1.0, reduction='mean')"
    assert repr(SoftMRRLoss()) == "SoftMRRLoss(temperature=1.0, reduction='mean')"
    assert repr(SoftRecallAtKLoss(k=3, reduction="sum")) == (
        "SoftRecallAtKLoss(k=3, temperature=1.0, reduction='sum')")
    s, y = torch.tensor([[float("nan"), 0.0, 1.0]]), torch.tensor([[1, 0, 0]])
    for name, cls in LOSSES.items():
        kw = {} if AT_K[name] is None else dict(k=AT_K[name])
        with pytest.raises(ValueError, match=rf"^{cls.__name__}: expected `input` to be "
                                             r"finite"):
            cls(**kw)(s, y)
        assert cls(**kw, validate_args=False)(s, y).isnan()


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_errors(name):
    fn = FUNCTIONS[name]
    fname = fn.__name__
    s, y = torch.randn(2, 4), torch.tensor([[0, 1, 1, 0], [1, 0, 0, 0]])
    with pytest.raises(ValueError, match=rf"{fname}: expected `input` to be a 2-D tensor"):
        _call(name, s[0], y[0])
    with pytest.raises(ValueError, match=rf"{fname}: expected `target` to be of shape \(2, 4\)"):
        _call(name, s, y[:, :3])
    with pytest.raises(TypeError, match=rf"{fname}: expected `input` to be a floating-point"):
        _call(name, y, y)
    with pytest.raises(ValueError, match=rf"{fname}: expected `temperature` to be >= 0"):
        _call(name, s, y, temperature=-1.0)
    with pytest.raises(ValueError, match=rf"{fname}: expected `reduction` to be one of"):
        _call(name, s, y, reduction="batchmean")
    with pytest.raises(ValueError, match=rf"{fname}: expected `chunk_size` to be an int >= 1"):
        _call(name, s, y, chunk_size=0)
    with pytest.raises(ValueError, match=rf"{fname}: expected `input` to be finite"):
        _call(name, s.masked_fill(y > 0, float("nan")), y)
    if name == "ndcg":
        with pytest.raises(ValueError, match=r"expected `target` to be non-negative"):
            fn(s, -y)
        with pytest.raises(ValueError, match=r"expected `gain` to be one of"):
            fn(s, y, gain="quadratic")
        fn(s, y.masked_fill(y == 0, -1), ignore_index=-1)  # ignored values pass
    else:
        with pytest.raises(ValueError, match=r"expected `target` to be integer values in "
                                             r"\{0, 1\}"):
            _call(name, s, y * 2)
    if name != "ap":
        with pytest.raises(ValueError, match=rf"{fname}: expected `k` to be an int >= 1"):
            fn(s, y, k=0)
        with pytest.raises(TypeError, match=rf"{fname}: expected `k` to be an int"):
            fn(s, y, k=2.0)
    options = {"k": 2} if name in ("recall", "precision") else {}
    loss_cls = LOSSES[name]
    with pytest.raises(ValueError, match=rf"{loss_cls.__name__}: expected `temperature`"):
        loss_cls(temperature=-0.1, **options)
    with pytest.raises(TypeError):
        loss_cls(task="binary", **options)
    with pytest.raises(ValueError, match=rf"{loss_cls.__name__}: expected `input` to be a 2-D"):
        loss_cls(**options)(s[0], y[0])


def test_nan_reaches_the_result_without_validation():
    s = torch.tensor([[0.5, float("nan"), 0.1], [0.3, 0.2, 0.1]])
    y = torch.tensor([[1, 0, 1], [0, 1, 0]])
    for name in FUNCTIONS:
        for temperature in (0, 0.5):
            value = _call(name, s, y, temperature=temperature, reduction="none",
                          validate_args=False)
            assert value[0].isnan() and value[1].isfinite(), (name, temperature)


# ---------------------------------------------------------------------------------------
# the Retrieval page's training example (included there), and the benchmark script


def test_the_pages_embedding_example_learns():
    # --8<-- [start:train]
    import torch
    import torch.nn.functional as F

    from softmetrics import SoftPrecisionAtKLoss, SoftRetrievalAPLoss

    torch.manual_seed(0)  # data: 8 Gaussian classes of 64 points in 16 dimensions
    centres = torch.randn(8, 16) * 0.6
    labels_all = torch.arange(8).repeat_interleave(64)
    features = centres[labels_all] + torch.randn(len(labels_all), 16)

    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 32))
    loss_fn = SoftRetrievalAPLoss(temperature=0.05, ignore_index=-1)  # 1 - mAP
    precision_fn = SoftPrecisionAtKLoss(k=4, temperature=0.05, cutoff_temperature=1.0,
                                        ignore_index=-1)  # 1 - precision@4
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def relevance(labels):
        """Items of the query's class are relevant; the query itself is ignored."""
        same = (labels[:, None] == labels[None, :]).long()
        return same.fill_diagonal_(-1)

    for _ in range(60):
        batch = torch.randint(0, len(features), (128,))
        x, labels = features[batch], labels_all[batch]
        emb = F.normalize(model(x), dim=1)
        sims = emb @ emb.T  # (Q, G): every embedding queries the batch
        loss = loss_fn(sims, relevance(labels)) + precision_fn(sims, relevance(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    with torch.no_grad():  # the exact metrics of the whole set
        emb = F.normalize(model(features), dim=1)
        sims, target = emb @ emb.T, relevance(labels_all)
        print("mAP", loss_fn.metric(sims, target).item(),
              "precision@4", precision_fn.metric(sims, target).item())
    # --8<-- [end:train]
    before = F.normalize(features, dim=1)
    start = loss_fn.metric(before @ before.T, target).item()
    assert loss_fn.metric(sims, target).item() > start + 0.1


def test_benchmark_smoke(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    subprocess.run([sys.executable, str(root / "benchmarks" / "retrieval.py"), "--smoke",
                    "--sizes", "16", "--out", str(tmp_path)], check=True, cwd=root, env=env,
                   capture_output=True, text=True, timeout=300)
    result = json.loads((tmp_path / "retrieval.json").read_text())
    assert result["machine"]["torch"] == torch.__version__
    assert {row["method"] for row in result["rows"]} >= {"softmetrics AP",
                                                         "naive AP (B x B x B)"}


def test_benchmarks_naive_ap_is_the_same_soft_ap():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import retrieval

    emb, _, target = retrieval.inputs(40, "cpu")
    x = torch.nn.functional.normalize(emb.detach().double(), dim=1)
    sims = x @ x.T
    expected = SoftRetrievalAPLoss(temperature=0.01, ignore_index=-1)(sims, target)
    assert retrieval.naive_ap(sims, target, 0.01).item() == pytest.approx(expected.item(),
                                                                           abs=1e-12)
