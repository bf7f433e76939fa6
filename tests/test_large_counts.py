"""Counts of batches with more entries than float32 holds integers (2^24 = 16,777,216): a
3-D scan or a batch of large segmentation maps has that many pixels of one class.

In float32 a running sum stops growing at 2^24 when its terms are about 1 (the spacing of
float32 numbers there is 2), and integers above 2^24 are not all representable: the counts
must be summed in float64. Exact counts are compared with integer counts (int64); soft
counts of confident logits with the exact ones.
"""

from __future__ import annotations

import pytest
import torch

from softmetrics import functional as F

# more than 2^24 entries of one class, and an odd number of entries in all
N = (1 << 24) + (1 << 22) + 7


@pytest.fixture(scope="module")
def labels() -> torch.Tensor:
    """Class 0 for all entries but 1000 (class 1), and a few wrong predictions."""
    y = torch.zeros(N, dtype=torch.long)
    y[-1000:] = 1
    return y


def _int_counts(pred: torch.Tensor, y: torch.Tensor, c: int) -> list[list[int]]:
    """TP, FP, FN per class from integer predictions, in int64."""
    out = []
    for k in range(c):
        tp = int(((pred == k) & (y == k)).sum())
        fp = int(((pred == k) & (y != k)).sum())
        fn = int(((pred != k) & (y == k)).sum())
        out.append([tp, fp, fn])
    return out


def test_exact_multiclass_counts_beyond_float32_integers(labels):
    y = labels
    pred = y.clone()
    pred[:5] = 1  # five false positives of class 1
    z = torch.nn.functional.one_hot(pred, 2).float()
    s = F.soft_stat_scores(z, y, task="multiclass", num_classes=2, temperature=0,
                           validate_args=False)
    got = torch.stack([s.tp, s.fp, s.fn], 1).tolist()
    assert got == _int_counts(pred, y, 2)
    assert s.tp.dtype == torch.float64
    assert F.soft_f1_score(z, y, task="multiclass", num_classes=2, temperature=0,
                           average="micro", validate_args=False).item() == torch.tensor(
        (N - 5) / N, dtype=torch.float32).item()  # the float64 value, rounded once


def test_exact_binary_counts_beyond_float32_integers(labels):
    y = labels == 0  # N - 1000 positives
    z = torch.where(y, 2.0, -2.0)
    z[-5:] = 2.0  # five false positives
    s = F.soft_stat_scores(z, y, task="binary", temperature=0, validate_args=False)
    assert [s.tp.item(), s.fp.item(), s.fn.item(), s.tn.item()] == [N - 1000, 5, 0, 995]


def test_soft_counts_of_confident_logits_beyond_float32_integers(labels):
    """Logits 30 apart: every probability rounds to 1 or 0 in float32, and the soft F1 of
    a perfect prediction is 1 (a running float32 sum stuck at 2^24 gave 0.94)."""
    y = labels
    z = (30.0 * torch.nn.functional.one_hot(y, 2).float()).requires_grad_()
    value = F.soft_f1_score(z, y, task="multiclass", num_classes=2, validate_args=False)
    assert value.item() == pytest.approx(1.0, abs=1e-6)
    value.backward()
    assert torch.isfinite(z.grad).all()
    with torch.no_grad():  # the same counts without the fused backward
        again = F.soft_f1_score(z, y, task="multiclass", num_classes=2, validate_args=False)
    assert again.item() == pytest.approx(1.0, abs=1e-6)


@pytest.fixture(scope="module")
def imbalanced():
    """2^22 entries, 2000 positives; a decision of confident logits with 500 misses and
    300 false alarms: its soft counts are the exact ones."""
    n = 1 << 22
    g = torch.Generator().manual_seed(0)
    y = torch.zeros(n, dtype=torch.long)
    idx = torch.randperm(n, generator=g)[:3000]
    y[idx[:2000]] = 1
    p = y.clone()
    p[idx[:500]] = 0
    p[idx[2000:2300]] = 1
    return torch.where(p > 0, 30.0, -30.0), y, p


def test_soft_mcc_and_kappa_of_many_entries_keep_their_digits(imbalanced):
    """MCC and kappa subtract nearly equal products of large counts (N^2 - sum of
    squares): in float32 the soft values of 4 million entries lost four digits."""
    sk = pytest.importorskip("sklearn.metrics")
    z, y, p = imbalanced
    mcc = F.soft_matthews_corrcoef(z, y, task="binary", temperature=1.0)
    kappa = F.soft_cohen_kappa(z, y, task="binary", temperature=1.0)
    assert mcc.item() == pytest.approx(sk.matthews_corrcoef(y, p), abs=1e-6)
    assert kappa.item() == pytest.approx(sk.cohen_kappa_score(y, p), abs=1e-6)
    z2 = torch.stack([-z, z], 1)  # the same decision as two-class multiclass logits
    mc = F.soft_matthews_corrcoef(z2, y, task="multiclass", num_classes=2, temperature=1.0)
    assert mc.item() == pytest.approx(sk.matthews_corrcoef(y, p), abs=1e-6)


def test_soft_lovasz_gradient_of_many_entries_in_float32(imbalanced):
    """The Lovász weights are the steps of the Jaccard loss along the sorted errors:
    taken as differences of float32 losses they lost their digits over 4 million
    entries (1% off the float64 gradient); written from the exact counts they hold."""
    _, y, _ = imbalanced
    g = torch.Generator().manual_seed(1)
    z = torch.randn(y.shape[0], generator=g) + 2.0 * (2 * y - 1)
    grads = []
    for dtype in (torch.float32, torch.float64):
        x = z.to(dtype).detach().requires_grad_()
        F.soft_jaccard_index(x, y, task="binary", relaxation="lovasz").backward()
        grads.append(x.grad.double())
    error = (grads[0] - grads[1]).norm() / grads[1].norm()
    assert error < 1e-5, error.item()
