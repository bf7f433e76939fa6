"""Classification semantics: options checked at construction, errors named after the
caller, edge values (beta = inf, empty batches, non-finite logits), segmentation shapes,
reductions, and per-sample values that equal the metric of each sample alone."""

from __future__ import annotations

import pytest
import torch

import softmetrics

MC3 = dict(task="multiclass", num_classes=3)


# ---------------------------------------------------------------------------------------
# options are checked at construction; errors name the Module


@pytest.mark.parametrize("option", [{"smooth": 1.0}, {"weight": torch.ones(3)},
                                    {"averge": "micro"}, {"alpha": 0.3}])
def test_unknown_option_raises_at_construction(option):
    name = next(iter(option))
    with pytest.raises(TypeError, match=rf"SoftJaccardLoss: expected `{name}` to be a known "
                                        r"option"):
        softmetrics.SoftJaccardLoss(**MC3, **option)


def test_module_errors_name_the_module():
    loss = softmetrics.SoftDiceLoss(**MC3)
    with pytest.raises(ValueError, match=r"^SoftDiceLoss: expected `target` to be of shape"):
        loss(torch.randn(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^SoftDiceLoss: expected `target` to be integer"):
        loss.metric(torch.randn(4, 3), torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"^SoftDiceLoss: expected `average`"):
        softmetrics.SoftDiceLoss(**MC3, average="avg")
