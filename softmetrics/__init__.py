"""softmetrics: smooth, differentiable surrogates of discrete evaluation metrics.

One formula, two relaxations: every metric is `formula(statistics(decision(scores)))`;
at `temperature=0` the decision is the exact one and the value is the exact metric.
"""

from __future__ import annotations

from . import functional
from .losses import (
    ExpectedBLEULoss,
    InfoNCELoss,
    LovaszLoss,
    NCELoss,
    SigLIPLoss,
    SoftAccuracyLoss,
    SoftAUROCLoss,
    SoftAveragePrecisionLoss,
    SoftBLEULoss,
    SoftCalibratedAveragePrecisionLoss,
    SoftCohenKappaLoss,
    SoftDiceLoss,
    SoftExactMatchLoss,
    SoftF1Loss,
    SoftFBetaLoss,
    SoftIoULoss,
    SoftJaccardLoss,
    SoftMCCLoss,
    SoftMRRLoss,
    SoftNDCGLoss,
    SoftPrecisionAtKLoss,
    SoftPrecisionLoss,
    SoftRecallAtKLoss,
    SoftRecallLoss,
    SoftRetrievalAPLoss,
    SoftTopKAccuracyLoss,
    SoftTverskyLoss,
)

__version__ = "0.1.0"

__all__ = [
    "ExpectedBLEULoss",
    "InfoNCELoss",
    "LovaszLoss",
    "NCELoss",
    "SigLIPLoss",
    "SoftAUROCLoss",
    "SoftAccuracyLoss",
    "SoftAveragePrecisionLoss",
    "SoftBLEULoss",
    "SoftCalibratedAveragePrecisionLoss",
    "SoftCohenKappaLoss",
    "SoftDiceLoss",
    "SoftExactMatchLoss",
    "SoftF1Loss",
    "SoftFBetaLoss",
    "SoftIoULoss",
    "SoftJaccardLoss",
    "SoftMCCLoss",
    "SoftMRRLoss",
    "SoftNDCGLoss",
    "SoftPrecisionAtKLoss",
    "SoftPrecisionLoss",
    "SoftRecallAtKLoss",
    "SoftRecallLoss",
    "SoftRetrievalAPLoss",
    "SoftTopKAccuracyLoss",
    "SoftTverskyLoss",
    "__version__",
    "functional",
]
