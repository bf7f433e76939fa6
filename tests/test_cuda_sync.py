"""On CUDA the hot paths never wait for the device: no host synchronisation in the forward
and backward passes of the losses and in `bleu_score` (with `validate_args=False`, whose
value checks read the data by design). Run with `pytest --device cuda`; on the CPU every
test here is skipped.

`torch.cuda.set_sync_debug_mode("error")` turns each synchronising CUDA call (a copy to or
from pageable host memory, `.item()`, `nonzero`, a stream synchronisation) into an error.
Each case runs once before the check, so that one-time set-up is not counted.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import softmetrics
from softmetrics.functional import bleu_score, info_nce


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
]


@pytest.mark.parametrize("make, kind", [c[1:] for c in CLASSIFICATION],
                         ids=[c[0] for c in CLASSIFICATION])
def test_classification_losses_do_not_synchronise(make, kind, cuda):
    loss_fn = make().to(cuda)
    if kind == "multiclass":
        x, y = _randn(256, 7, device=cuda), _randint(7, 256, device=cuda)
    elif kind == "segmentation":
        x, y = _randn(2, 7, 32, 32, device=cuda), _randint(7, 2, 32, 32, device=cuda)
        y[:, :4] = 255
    elif kind == "binary":
        x, y = _randn(256, device=cuda), _randint(2, 256, device=cuda)
    else:
        x, y = _randn(256, 7, device=cuda), _randint(2, 256, 7, device=cuda)
    x.requires_grad_()

    def step() -> None:
        x.grad = None
        loss_fn(x, y).backward()

    _assert_no_sync(step)


@pytest.mark.parametrize("options", [
    dict(chunk_size=64),
    dict(chunk_size=64, symmetric=True),
    dict(chunk_size=64, query_negatives=True, symmetric=True),
    dict(chunk_size=None),
], ids=["tiled", "tiled-symmetric", "tiled-simclr", "full"])
def test_info_nce_does_not_synchronise(options, cuda):
    q = _randn(300, 32, device=cuda).requires_grad_()
    k = _randn(300, 32, device=cuda, seed=2).requires_grad_()

    def step() -> None:
        q.grad = k.grad = None
        info_nce(q, k, temperature=0.1, validate_args=False, **options).backward()

    _assert_no_sync(step)


@pytest.mark.parametrize("corpus", [False, True])
@pytest.mark.parametrize("refs", [1, 3])
def test_bleu_score_does_not_synchronise(corpus, refs, cuda):
    hyp = _randint(50, 512, 24, device=cuda) + 1
    ref = _randint(50, 512, refs, 24, device=cuda, seed=3) + 1
    if refs == 1:
        ref = ref[:, 0]

    def step() -> None:
        bleu_score(hyp, ref, vocab_size=51, corpus=corpus, validate_args=False)

    _assert_no_sync(step)
