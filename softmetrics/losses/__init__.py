"""`torch.nn.Module` losses: each holds its options and makes one functional call.

`forward(input, target)` returns the loss (`1 - soft metric` for metrics, the loss itself
for InfoNCE and NCE); `.metric(input, target)` returns the exact metric with the same
options (temperature 0, no gradient). One module per family, as in `functional`.
"""

from __future__ import annotations

from .classification import (
    SoftAccuracyLoss,
    SoftDiceLoss,
    SoftF1Loss,
    SoftFBetaLoss,
    SoftIoULoss,
    SoftJaccardLoss,
    SoftMCCLoss,
    SoftPrecisionLoss,
    SoftRecallLoss,
    SoftTopKAccuracyLoss,
    SoftTverskyLoss,
)
from .contrastive import InfoNCELoss, NCELoss
from .ranking import SoftAUROCLoss, SoftAveragePrecisionLoss, SoftCalibratedAveragePrecisionLoss
from .text import ExpectedBLEULoss, SoftBLEULoss

__all__ = [
    "ExpectedBLEULoss",
    "InfoNCELoss",
    "NCELoss",
    "SoftAUROCLoss",
    "SoftAccuracyLoss",
    "SoftAveragePrecisionLoss",
    "SoftBLEULoss",
    "SoftCalibratedAveragePrecisionLoss",
    "SoftDiceLoss",
    "SoftF1Loss",
    "SoftFBetaLoss",
    "SoftIoULoss",
    "SoftJaccardLoss",
    "SoftMCCLoss",
    "SoftPrecisionLoss",
    "SoftRecallLoss",
    "SoftTopKAccuracyLoss",
    "SoftTverskyLoss",
]
