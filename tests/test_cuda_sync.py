"""On CUDA the hot paths never wait for the device: no host synchronisation in the forward
and backward passes of the losses and in `bleu_score` (with `validate_args=False`, whose
value checks read the data by design). Run with `pytest --device cuda`; on the CPU the
checks are skipped, and every step runs twice instead, the second time refused any
operation that reads tensor data on the host (`test_the_steps_run_on_the_cpu`).

`torch.cuda.set_sync_debug_mode("error")` turns each synchronising CUDA call (a copy to or
from pageable host memory, `.item()`, `nonzero`, a stream synchronisation) into an error.
Each case runs once before the check, so that one-time set-up is not counted.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import softmetrics
from softmetrics.functional import bleu_score, info_nce

from .listing import list_positives

Step = Callable[[], None]
aten = torch.ops.aten


@pytest.fixture
def cuda(device: torch.device) -> torch.device:
    if device.type != "cuda":
        pytest.skip("a CUDA check: run with --device cuda")
    return device


def _assert_no_sync(step: Callable[[], None]) -> None:
    step()  # warm-up: kernels, handles, the caching allocator
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()


def _randn(*shape: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(device)


def _randint(high: int, *shape: int, device: torch.device, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, shape, generator=g).to(device)


CLASSIFICATION = [
    ("f1-multiclass", lambda: softmetrics.SoftF1Loss(task="multiclass", num_classes=7,
                                                     validate_args=False), "multiclass"),
    ("jaccard-segmentation", lambda: softmetrics.SoftJaccardLoss(
        task="multiclass", num_classes=7, ignore_index=255, validate_args=False),
     "segmentation"),
    ("mcc-binary", lambda: softmetrics.SoftMCCLoss(task="binary", validate_args=False),
     "binary"),
    ("accuracy-multilabel", lambda: softmetrics.SoftAccuracyLoss(
        task="multilabel", num_classes=7, validate_args=False), "multilabel"),
    ("top-k", lambda: softmetrics.SoftTopKAccuracyLoss(num_classes=7, k=2,
                                                       validate_args=False), "multiclass"),
    ("f1-momentum", lambda: softmetrics.SoftF1Loss(task="multiclass", num_classes=7,
                                                   momentum=0.9, validate_args=False),
     "multiclass"),
    ("dice-weights-ignored-class", lambda: softmetrics.SoftDiceLoss(
        task="multiclass", num_classes=7, ignore_index=0, class_weights=torch.rand(7) + 0.5,
        validate_args=False), "multiclass"),
    ("dice-generalized-focal", lambda: softmetrics.SoftDiceLoss(
        task="multiclass", num_classes=7, ignore_index=255, class_weights="generalized",
        gamma=0.75, validate_args=False), "segmentation"),
    ("f1-multilabel-include", lambda: softmetrics.SoftF1Loss(
        task="multilabel", num_classes=7, zero_division=1.0, validate_args=False),
     "multilabel"),
    ("exact-match-multilabel", lambda: softmetrics.SoftExactMatchLoss(
        task="multilabel", num_classes=7, validate_args=False), "multilabel"),
    ("precision-top-k", lambda: softmetrics.SoftPrecisionLoss(
        task="multiclass", num_classes=7, top_k=2, ignore_index=255, validate_args=False),
     "multiclass"),
    ("dice-soft-targets", lambda: softmetrics.SoftDiceLoss(
        task="multiclass", num_classes=7, validate_args=False), "soft-multiclass"),
    ("jaccard-soft-masks", lambda: softmetrics.SoftJaccardLoss(
        task="multilabel", num_classes=7, validate_args=False), "soft-multilabel"),
    ("lovasz-segmentation", lambda: softmetrics.LovaszLoss(
        task="multiclass", num_classes=7, ignore_index=255, multidim_average="samplewise",
        validate_args=False), "segmentation"),
    ("lovasz-hinge-multilabel", lambda: softmetrics.LovaszLoss(
        task="multilabel", num_classes=7, validate_args=False), "multilabel"),
    ("kappa-quadratic-momentum", lambda: softmetrics.SoftCohenKappaLoss(
        task="multiclass", num_classes=7, weights="quadratic", ignore_index=255,
        momentum=0.9, validate_args=False), "segmentation"),
    ("kappa-multiclass", lambda: softmetrics.SoftCohenKappaLoss(
        task="multiclass", num_classes=7, validate_args=False), "multiclass"),
    ("kappa-binary", lambda: softmetrics.SoftCohenKappaLoss(task="binary",
                                                            validate_args=False), "binary"),
]


def _classification_step(make, kind: str, device: torch.device) -> Step:
    loss_fn = make().to(device)
    if kind == "multiclass":
        x, y = _randn(256, 7, device=device), _randint(7, 256, device=device)
    elif kind == "segmentation":
        x, y = _randn(2, 7, 32, 32, device=device), _randint(7, 2, 32, 32, device=device)
        y[:, :4] = 255
    elif kind == "binary":
        x, y = _randn(256, device=device), _randint(2, 256, device=device)
    elif kind == "soft-multiclass":
        x, y = _randn(256, 7, device=device), _randn(256, 7, device=device, seed=3).softmax(1)
    elif kind == "soft-multilabel":
        x, y = _randn(256, 7, device=device), _randn(256, 7, device=device, seed=3).sigmoid()
    else:
        x, y = _randn(256, 7, device=device), _randint(2, 256, 7, device=device)
    x.requires_grad_()

    def step() -> None:
        x.grad = None
        loss_fn(x, y).backward()

    return step


@pytest.mark.parametrize("make, kind", [c[1:] for c in CLASSIFICATION],
                         ids=[c[0] for c in CLASSIFICATION])
def test_classification_losses_do_not_synchronise(make, kind, cuda):
    _assert_no_sync(_classification_step(make, kind, cuda))


INFO_NCE = [
    ("tiled", dict(chunk_size=64)),
    ("tiled-symmetric", dict(chunk_size=64, symmetric=True)),
    ("tiled-simclr", dict(chunk_size=64, query_negatives=True, symmetric=True)),
    ("full", dict(chunk_size=None)),
]


def _info_nce_step(options: dict, device: torch.device) -> Step:
    q = _randn(300, 32, device=device).requires_grad_()
    k = _randn(300, 32, device=device, seed=2).requires_grad_()

    def step() -> None:
        q.grad = k.grad = None
        info_nce(q, k, temperature=0.1, validate_args=False, **options).backward()

    return step


@pytest.mark.parametrize("options", [c[1] for c in INFO_NCE], ids=[c[0] for c in INFO_NCE])
def test_info_nce_does_not_synchronise(options, cuda):
    _assert_no_sync(_info_nce_step(options, cuda))


BLEU = [(corpus, refs) for corpus in (False, True) for refs in (1, 3)]


def _bleu_step(corpus: bool, refs: int, device: torch.device) -> Step:
    hyp = _randint(50, 512, 24, device=device) + 1
    ref = _randint(50, 512, refs, 24, device=device, seed=3) + 1
    if refs == 1:
        ref = ref[:, 0]

    def step() -> None:
        bleu_score(hyp, ref, vocab_size=51, corpus=corpus, validate_args=False)

    return step


@pytest.mark.parametrize("corpus, refs", BLEU)
def test_bleu_score_does_not_synchronise(corpus, refs, cuda):
    _assert_no_sync(_bleu_step(corpus, refs, cuda))


RANKING = [
    ("auroc-binary", lambda: softmetrics.SoftAUROCLoss(task="binary", temperature=0.5,
                                                       validate_args=False), "binary"),
    ("ap-multilabel", lambda: softmetrics.SoftAveragePrecisionLoss(
        task="multilabel", num_classes=7, validate_args=False), "multilabel"),
    ("cap-multiclass", lambda: softmetrics.SoftCalibratedAveragePrecisionLoss(
        task="multiclass", num_classes=7, average="weighted", validate_args=False),
     "multiclass"),
    ("ap-multiclass-micro-ignore", lambda: softmetrics.SoftAveragePrecisionLoss(
        task="multiclass", num_classes=7, average="micro", ignore_index=255, chunk_size=50,
        validate_args=False), "multiclass-ignore"),
    ("auroc-micro-ignore", lambda: softmetrics.SoftAUROCLoss(
        task="multilabel", num_classes=7, average="micro", ignore_index=-1,
        validate_args=False), "multilabel-ignore"),
    ("ap-tiled-momentum", lambda: softmetrics.SoftAveragePrecisionLoss(
        task="multilabel", num_classes=7, chunk_size=32, momentum=0.9,
        validate_args=False), "multilabel"),
    ("partial-auroc-multilabel", lambda: softmetrics.SoftAUROCLoss(
        task="multilabel", num_classes=7, max_fpr=0.1, temperature=0.3,
        validate_args=False), "multilabel"),
]


def _ranking_step(make, kind: str, device: torch.device) -> Step:
    loss_fn = make().to(device)
    if kind == "binary":
        x, y = _randn(256, device=device), _randint(2, 256, device=device)
    elif kind.startswith("multiclass"):
        x, y = _randn(256, 7, device=device), _randint(7, 256, device=device)
        if kind == "multiclass-ignore":
            y[:8] = 255
    else:
        x, y = _randn(256, 7, device=device), _randint(2, 256, 7, device=device)
        if kind == "multilabel-ignore":
            y[:8] = -1
    x.requires_grad_()

    def step() -> None:
        x.grad = None
        loss_fn(x, y).backward()

    return step


RETRIEVAL = [
    ("ndcg-graded", lambda: softmetrics.SoftNDCGLoss(k=10, temperature=0.1,
                                                     validate_args=False), 4),
    ("recall-at-k-ignore", lambda: softmetrics.SoftRecallAtKLoss(
        k=5, temperature=0.1, cutoff_temperature=1.0, ignore_index=-1, chunk_size=16,
        validate_args=False), 2),
    ("precision-at-k", lambda: softmetrics.SoftPrecisionAtKLoss(k=5, validate_args=False), 2),
    ("mrr", lambda: softmetrics.SoftMRRLoss(temperature=0.1, validate_args=False), 2),
    ("retrieval-ap", lambda: softmetrics.SoftRetrievalAPLoss(temperature=0.1,
                                                             validate_args=False), 2),
]


def _retrieval_step(make, grades: int, device: torch.device) -> Step:
    loss_fn = make().to(device)
    x = _randn(48, 64, device=device).requires_grad_()
    y = _randint(grades, 48, 64, device=device)
    y[:, :48].fill_diagonal_(-1)  # the self-matches of a gallery made of the queries

    def step() -> None:
        x.grad = None
        loss_fn(x, y).backward()

    return step


TEXT = [
    ("soft-bleu", lambda: softmetrics.SoftBLEULoss(validate_args=False), "soft"),
    ("soft-bleu-corpus-floor", lambda: softmetrics.SoftBLEULoss(
        corpus=True, smooth="floor", validate_args=False), "soft"),
    ("soft-bleu-tensor-temperature", lambda: softmetrics.SoftBLEULoss(
        temperature=torch.tensor(0.5), max_order=2, validate_args=False), "soft"),
    ("expected-bleu", lambda: softmetrics.ExpectedBLEULoss(validate_args=False), "expected"),
    ("expected-bleu-vocab", lambda: softmetrics.ExpectedBLEULoss(
        alpha=0.5, vocab_size=51, validate_args=False), "expected"),
]


def _text_step(make, kind: str, device: torch.device) -> Step:
    loss_fn = make().to(device)
    ref = _randint(50, 32, 3, 20, device=device, seed=3) + 1
    ref[:, 2, 12:] = 0  # a shorter third reference
    if kind == "soft":
        x = _randn(32, 20, 51, device=device).requires_grad_()

        def step() -> None:
            x.grad = None
            loss_fn(x, ref).backward()
    else:
        samples = _randint(50, 32, 4, 20, device=device) + 1
        samples[:, 1, 15:] = 0
        log_probs = _randn(32, 4, device=device).requires_grad_()

        def step() -> None:
            log_probs.grad = None
            loss_fn(samples, log_probs, ref).backward()

    return step


CONTRASTIVE = [
    ("nce-distribution", lambda q: softmetrics.NCELoss(500, 16, q, validate_args=False)),
    ("nce-shared", lambda q: softmetrics.NCELoss(500, 16, q, shared_noise=True,
                                                 validate_args=False)),
    ("nce-uniform", lambda q: softmetrics.NCELoss(500, 16, validate_args=False)),
    ("info-nce-learned-tiled", lambda q: softmetrics.InfoNCELoss(
        learn_temperature=True, chunk_size=64, symmetric=True, validate_args=False)),
    ("info-nce-learned-full", lambda q: softmetrics.InfoNCELoss(
        learn_temperature=True, validate_args=False)),
    ("siglip-learned-tiled", lambda q: softmetrics.SigLIPLoss(chunk_size=64,
                                                              validate_args=False)),
    ("siglip-learned-full", lambda q: softmetrics.SigLIPLoss(validate_args=False)),
]


def _contrastive_step(make, device: torch.device) -> Step:
    q = torch.softmax(_randn(500, device=torch.device("cpu"), seed=4), 0)
    loss_fn = make(q).to(device)
    if isinstance(loss_fn, softmetrics.NCELoss):
        hidden = _randn(256, 32, device=device).requires_grad_()
        weight = _randn(500, 32, device=device, seed=5).requires_grad_()
        bias = _randn(500, device=device, seed=6).requires_grad_()
        target = _randint(500, 256, device=device)
        generator = torch.Generator(device=device).manual_seed(0)

        def step() -> None:
            hidden.grad = weight.grad = bias.grad = None
            loss_fn(hidden, target, weight, bias, generator=generator).backward()
    else:
        query = _randn(300, 32, device=device).requires_grad_()
        key = _randn(300, 32, device=device, seed=2).requires_grad_()

        def step() -> None:
            query.grad = key.grad = None
            loss_fn.zero_grad()
            loss_fn(query, key).backward()

    return step


@pytest.mark.parametrize("make, kind", [c[1:] for c in RANKING], ids=[c[0] for c in RANKING])
def test_ranking_losses_do_not_synchronise(make, kind, cuda):
    _assert_no_sync(_ranking_step(make, kind, cuda))


@pytest.mark.parametrize("make, grades", [c[1:] for c in RETRIEVAL],
                         ids=[c[0] for c in RETRIEVAL])
def test_retrieval_losses_do_not_synchronise(make, grades, cuda):
    _assert_no_sync(_retrieval_step(make, grades, cuda))


@pytest.mark.parametrize("make, kind", [c[1:] for c in TEXT], ids=[c[0] for c in TEXT])
def test_bleu_losses_do_not_synchronise(make, kind, cuda):
    _assert_no_sync(_text_step(make, kind, cuda))


@pytest.mark.parametrize("make", [c[1] for c in CONTRASTIVE], ids=[c[0] for c in CONTRASTIVE])
def test_nce_and_learned_temperature_do_not_synchronise(make, cuda):
    _assert_no_sync(_contrastive_step(make, cuda))


SMOKE: dict[str, Callable[[torch.device], Step]] = {
    **{f"classification-{name}": (lambda d, m=make, k=kind: _classification_step(m, k, d))
       for name, make, kind in CLASSIFICATION},
    **{f"info-nce-{name}": (lambda d, o=options: _info_nce_step(o, d))
       for name, options in INFO_NCE},
    **{f"bleu-score-{'corpus' if corpus else 'sentence'}-{refs}-refs":
       (lambda d, c=corpus, r=refs: _bleu_step(c, r, d)) for corpus, refs in BLEU},
    **{f"ranking-{name}": (lambda d, m=make, k=kind: _ranking_step(m, k, d))
       for name, make, kind in RANKING},
    **{f"retrieval-{name}": (lambda d, m=make, k=grades: _retrieval_step(m, k, d))
       for name, make, grades in RETRIEVAL},
    **{f"text-{name}": (lambda d, m=make, k=kind: _text_step(m, k, d))
       for name, make, kind in TEXT},
    **{f"contrastive-{name}": (lambda d, m=make: _contrastive_step(m, d))
       for name, make in CONTRASTIVE},
}


class _FlagDataReads(TorchDispatchMode):
    """Raise on the operations that read tensor data on the host (`.item()`, `bool()`, a
    boolean mask, `nonzero`, `unique`): on CUDA each is a synchronisation."""

    READS = (aten._local_scalar_dense, aten.nonzero, aten.masked_select, aten._unique2,
             aten.unique_dim, aten.unique_consecutive, aten.repeat_interleave)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        read = func.overloadpacket in self.READS
        if func.overloadpacket in (aten.index, aten.index_put, aten.index_put_):
            read = any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
                       for i in args[1] if i is not None)
        if read:
            raise RuntimeError(f"{func} reads tensor data on the host")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_the_steps_run_on_the_cpu(name, monkeypatch):
    """The steps checked on CUDA above, twice on the CPU (as `_assert_no_sync` runs them),
    so that they stay valid calls where no GPU is at hand; the second one may not read
    tensor data on the host. The ranking tiles read the labels on the CPU only, where it
    costs nothing (`RANKING_CPU_LISTS_POSITIVES`): here they run as on CUDA."""
    list_positives(monkeypatch, False)
    step = SMOKE[name](torch.device("cpu"))
    step()
    with _FlagDataReads():
        step()
