"""Every loss, metric and backward pass runs under `torch.use_deterministic_algorithms(True)`.

On CUDA some operations have no deterministic kernel and raise in that mode (the list is
in the docstring of `torch.use_deterministic_algorithms`); on the CPU they run. So that the
CPU run checks the same thing, the operations of that list that the library could reach
are flagged here on any device (a floating-point `cumsum`, for one). The mode also fills
fresh `torch.empty` memory with NaN, so a buffer read before it is written shows up.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import softmetrics
from softmetrics.functional import (
    bleu_score,
    expected_bleu,
    info_nce,
    nce_loss,
    retrieval_accuracy,
    sigmoid_contrastive_loss,
    soft_auroc,
    soft_average_precision,
    soft_bleu_score,
    soft_calibrated_average_precision,
    soft_exact_match,
    soft_ndcg,
    soft_precision_at_k,
    soft_recall_at_k,
    soft_reciprocal_rank,
    soft_retrieval_average_precision,
    soft_top_k_accuracy,
)

aten = torch.ops.aten


class _FlagNondeterministicOnCuda(TorchDispatchMode):
    """Raise on the operations that raise on CUDA under deterministic algorithms."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        bad = packet in (aten.histc, aten.put, aten.put_, aten.nll_loss2d_forward)
        if packet in (aten.cumsum, aten.cumsum_):
            bad = out.is_floating_point() or out.is_complex()
        elif packet in (aten.bincount,):
            bad = (len(args) > 1 and args[1] is not None) or kwargs.get("weights") is not None
        elif packet in (aten.median, aten.nanmedian):
            bad = isinstance(out, tuple)  # the variant with indices
        elif packet in (aten.scatter_reduce, aten.scatter_reduce_):
            bad = "prod" in (list(args) + list(kwargs.values()))
        if bad:
            raise RuntimeError(f"{func} has no deterministic CUDA implementation")
        return out


@pytest.fixture
def deterministic(monkeypatch):
    # cuBLAS needs a fixed workspace for deterministic matrix products (torch refuses
    # them in this mode otherwise)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with _FlagNondeterministicOnCuda():
            yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def test_the_flag_catches_a_float_cumsum(deterministic):
    with pytest.raises(RuntimeError, match="no deterministic CUDA implementation"):
        torch.ones(3).cumsum(0)
    assert torch.ones(3, dtype=torch.long).cumsum(0).tolist() == [1, 2, 3]


def _data(device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g).to(device)

    def randint(high, *shape):
        return torch.randint(0, high, shape, generator=g).to(device)

    return randn, randint


def _text_steps(device: torch.device) -> dict[str, Callable[[], None]]:
    randn, randint = _data(device)
    hyp, ref = randint(6, 8, 9) + 1, randint(6, 8, 2, 9) + 1
    ref[:, 1, 5:] = 0
    logits = randn(8, 9, 8).requires_grad_()
    samples, log_probs = randint(6, 8, 3, 9) + 1, randn(8, 3).requires_grad_()

    def soft(smooth: str, temperature: float) -> Callable[[], None]:
        def step() -> None:
            value = soft_bleu_score(logits, ref, temperature=temperature, smooth=smooth)
            if temperature:
                value.sum().backward()
            soft_bleu_score(logits, ref, temperature=temperature, smooth=smooth, corpus=True)
        return step

    steps = {f"soft-bleu-{s}": soft(s, 0.5) for s in ("exp", "floor", "add-k", "none")}
    steps["soft-bleu-hard"] = soft("exp", 0.0)
    steps["bleu"] = lambda: (bleu_score(hyp, ref), bleu_score(hyp, ref, corpus=True))
    steps["expected-bleu"] = lambda: expected_bleu(samples, log_probs, ref).backward()
    steps["bleu-loss"] = lambda: softmetrics.SoftBLEULoss()(logits, ref).backward()
    return steps


def _ranking_steps(device: torch.device) -> dict[str, Callable[[], None]]:
    randn, randint = _data(device)
    scores = randn(40, 3).requires_grad_()
    labels = randint(2, 40, 3)
    classes = randint(3, 40)
    steps = {}
    for name, fn in (("auroc", soft_auroc), ("ap", soft_average_precision),
                     ("cap", soft_calibrated_average_precision)):
        for temperature in (0.0, 0.5):
            def step(fn=fn, temperature=temperature) -> None:
                value = fn(scores, labels, task="multilabel", num_classes=3,
                           temperature=temperature)
                # multiclass scatters its tiles' gradients into the classes' rows (scatter_add_)
                value = value + fn(scores, classes, task="multiclass", num_classes=3,
                                   temperature=temperature)
                fn(scores[:, 0], labels[:, 0], task="binary", temperature=temperature)
                if temperature:
                    value.backward()
            steps[f"{name}-{temperature}"] = step
    for temperature in (0.0, 0.5):
        def partial(temperature=temperature) -> None:
            value = soft_auroc(scores, labels, task="multilabel", num_classes=3, max_fpr=0.3,
                               temperature=temperature)
            if temperature:
                value.backward()
        steps[f"partial-auroc-{temperature}"] = partial
    for name, cls in (("auroc-loss", softmetrics.SoftAUROCLoss),
                      ("ap-loss", softmetrics.SoftAveragePrecisionLoss)):
        def module_step(cls=cls) -> None:
            loss_fn = cls(task="multilabel", num_classes=3, momentum=0.9).to(device)
            loss_fn(scores, labels).backward()
            loss_fn.metric(scores, labels)
        steps[name] = module_step
    return steps


def _classification_steps(device: torch.device) -> dict[str, Callable[[], None]]:
    randn, randint = _data(device)
    x, y = randn(64, 5).requires_grad_(), randint(5, 64)
    seg, seg_y = randn(2, 5, 6, 6).requires_grad_(), randint(5, 2, 6, 6)
    steps = {}
    for name, cls in (("f1", softmetrics.SoftF1Loss), ("jaccard", softmetrics.SoftJaccardLoss),
                      ("mcc", softmetrics.SoftMCCLoss), ("accuracy", softmetrics.SoftAccuracyLoss)):
        def step(cls=cls) -> None:
            loss_fn = cls(task="multiclass", num_classes=5)
            loss_fn(x, y).backward()
            loss_fn.metric(x, y)
            cls(task="multiclass", num_classes=5, ignore_index=0)(seg, seg_y).backward()
            cls(task="multilabel", num_classes=5)(x, (x > 0).long()).backward()
            # soft targets: the fused multiclass and sigmoid counts against probabilities
            cls(task="multiclass", num_classes=5)(x, x.detach().softmax(1)).backward()
            cls(task="multilabel", num_classes=5)(x, x.detach().sigmoid()).backward()
        steps[name] = step
    steps["top-k"] = lambda: (
        softmetrics.SoftTopKAccuracyLoss(num_classes=5, k=2)(x, y).backward(),
        soft_top_k_accuracy(x, y, num_classes=5, k=2, temperature=0))
    steps["tversky-focal"] = lambda: softmetrics.SoftTverskyLoss(
        task="multiclass", num_classes=5, alpha=0.3, beta=0.7, gamma=0.75)(x, y).backward()
    steps["fbeta"] = lambda: softmetrics.SoftFBetaLoss(
        task="multiclass", num_classes=5, beta=2.0)(x, y).backward()
    steps["dice-generalized"] = lambda: softmetrics.SoftDiceLoss(
        task="multiclass", num_classes=5, class_weights="generalized")(seg, seg_y).backward()
    steps["class-weights"] = lambda: softmetrics.SoftF1Loss(
        task="multiclass", num_classes=5,
        class_weights=torch.arange(1.0, 6.0, device=device))(x, y).backward()

    def exact_match() -> None:
        for t in (0.0, 0.5):
            value = (soft_exact_match(seg, seg_y, task="multiclass", num_classes=5,
                                      temperature=t)
                     + soft_exact_match(x, (x > 0).long(), task="multilabel", num_classes=5,
                                        temperature=t))
            if t:
                value.backward()
    steps["exact-match"] = exact_match
    steps["lovasz"] = lambda: (
        softmetrics.LovaszLoss(task="multiclass", num_classes=5, ignore_index=0)(seg, seg_y)
        .backward(),
        softmetrics.LovaszLoss(task="multilabel", num_classes=5)(x, (x > 0).long()).backward())
    for weights in (None, "linear", "quadratic"):
        def kappa_step(weights=weights) -> None:
            loss_fn = softmetrics.SoftCohenKappaLoss(task="multiclass", num_classes=5,
                                                     weights=weights, ignore_index=0)
            loss_fn(seg, seg_y).backward()
            loss_fn.metric(seg, seg_y)
            softmetrics.SoftCohenKappaLoss(task="binary")(x[:, 0], y % 2).backward()
        steps[f"kappa-{weights or 'unweighted'}"] = kappa_step
    return steps


def _contrastive_steps(device: torch.device) -> dict[str, Callable[[], None]]:
    randn, randint = _data(device)
    q, k = randn(50, 8).requires_grad_(), randn(50, 8).requires_grad_()
    hidden, weight = randn(16, 8).requires_grad_(), randn(30, 8).requires_grad_()
    target = randint(30, 16)

    def nce(distribution: torch.Tensor | None) -> Callable[[], None]:
        def step() -> None:
            g = torch.Generator(device=device).manual_seed(0)
            nce_loss(hidden, target, weight, None, num_noise=5, generator=g,
                     noise_distribution=distribution).backward()
        return step

    learned = softmetrics.InfoNCELoss(learn_temperature=True, chunk_size=16).to(device)
    return {
        "info-nce": lambda: info_nce(q, k, symmetric=True).backward(),
        "info-nce-tiled": lambda: info_nce(q, k, chunk_size=16, query_negatives=True,
                                           symmetric=True).backward(),
        "info-nce-learned": lambda: learned(q, k).backward(),
        "siglip": lambda: sigmoid_contrastive_loss(q, k).backward(),
        "siglip-tiled": lambda: sigmoid_contrastive_loss(q, k, chunk_size=16).backward(),
        "siglip-learned": lambda: softmetrics.SigLIPLoss(chunk_size=16).to(device)(q, k)
        .backward(),
        "retrieval": lambda: retrieval_accuracy(q, k, k=2),
        "nce": nce(None),
        "nce-distribution": nce(torch.full((30,), 1 / 30, device=device)),
    }


def _retrieval_steps(device: torch.device) -> dict[str, Callable[[], None]]:
    """The per-query ranking metrics, exact (the discount table of NDCG) and soft, with
    graded relevance and ignored items."""
    randn, randint = _data(device)
    scores = randn(6, 9).round().requires_grad_()  # rounded: ties
    graded = randint(4, 6, 9)
    graded[:, 0] = -1
    binary = (graded > 1).long()
    steps = {}
    for name, fn, target, kw in (
            ("ndcg", soft_ndcg, graded, {"k": 4}),
            ("ndcg-all", soft_ndcg, graded, {}),
            ("recall", soft_recall_at_k, binary, {"k": 3}),
            ("precision", soft_precision_at_k, binary, {"k": 3}),
            ("rr", soft_reciprocal_rank, binary, {"k": 5}),
            ("ap", soft_retrieval_average_precision, binary, {})):
        for temperature in (0.0, 0.5):
            def step(fn=fn, target=target, kw=kw, temperature=temperature) -> None:
                value = fn(scores, target, temperature=temperature, ignore_index=-1, **kw)
                if temperature:
                    value.sum().backward()
            steps[f"retrieval-{name}-{'exact' if temperature == 0 else 'soft'}"] = step
    return steps


def _steps(device: torch.device) -> dict[str, Callable[[], None]]:
    return {**_text_steps(device), **_ranking_steps(device),
            **_classification_steps(device), **_contrastive_steps(device),
            **_retrieval_steps(device)}


@pytest.mark.parametrize("name", sorted(_steps(torch.device("cpu"))))
def test_runs_under_deterministic_algorithms(name, device, deterministic):
    _steps(device)[name]()


@pytest.mark.parametrize("length", [0, 1, 2, 3, 7, 8, 9, 64, 1000])
def test_running_sums_are_the_cumulative_sums(length):
    """`running_sums`, the scan the library uses where a floating-point `cumsum` would
    have no deterministic CUDA kernel: `cumsum` of the last axis, exactly for integers
    (counts), to rounding for fractions, over leading axes too."""
    from softmetrics._relax import running_sums

    g = torch.Generator().manual_seed(length)
    counts = torch.randint(0, 1000, (2, 3, length), generator=g).double()
    assert torch.equal(running_sums(counts), counts.cumsum(-1))
    fractions = torch.rand(3, length, generator=g, dtype=torch.float64)
    torch.testing.assert_close(running_sums(fractions), fractions.cumsum(-1),
                               rtol=1e-14, atol=0)
