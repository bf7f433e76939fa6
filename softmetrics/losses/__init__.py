"""`torch.nn.Module` losses: each holds its options and makes one functional call.

`forward(input, target)` returns the loss (`1 - soft metric` for metrics, the loss itself
for InfoNCE, SigLIP and NCE); `.metric(input, target)` returns the exact metric with the
same options (temperature 0, no gradient). One module per family, as in `functional`; the
names below (`X as X`: an explicit re-export) are the public ones.
"""

from __future__ import annotations

from ._base import name_inherited_init as _name_inherited_init
from .agreement import SoftCohenKappaLoss as SoftCohenKappaLoss
from .classification import (
    LovaszLoss as LovaszLoss,
    SoftAccuracyLoss as SoftAccuracyLoss,
    SoftDiceLoss as SoftDiceLoss,
    SoftF1Loss as SoftF1Loss,
    SoftFBetaLoss as SoftFBetaLoss,
    SoftIoULoss as SoftIoULoss,
    SoftJaccardLoss as SoftJaccardLoss,
    SoftMCCLoss as SoftMCCLoss,
    SoftPrecisionLoss as SoftPrecisionLoss,
    SoftRecallLoss as SoftRecallLoss,
    SoftTopKAccuracyLoss as SoftTopKAccuracyLoss,
    SoftTverskyLoss as SoftTverskyLoss,
)
from .contrastive import (
    InfoNCELoss as InfoNCELoss,
    NCELoss as NCELoss,
    SigLIPLoss as SigLIPLoss,
)
from .exact_match import SoftExactMatchLoss as SoftExactMatchLoss
from .ranking import (
    SoftAUROCLoss as SoftAUROCLoss,
    SoftAveragePrecisionLoss as SoftAveragePrecisionLoss,
    SoftCalibratedAveragePrecisionLoss as SoftCalibratedAveragePrecisionLoss,
)
from .retrieval import (
    SoftMRRLoss as SoftMRRLoss,
    SoftNDCGLoss as SoftNDCGLoss,
    SoftPrecisionAtKLoss as SoftPrecisionAtKLoss,
    SoftRecallAtKLoss as SoftRecallAtKLoss,
    SoftRetrievalAPLoss as SoftRetrievalAPLoss,
)
from .text import ExpectedBLEULoss as ExpectedBLEULoss, SoftBLEULoss as SoftBLEULoss

# a public loss that inherits its __init__ names itself in Python's argument errors
for _cls in [v for k, v in list(globals().items()) if k.endswith("Loss")]:
    _name_inherited_init(_cls)
del _cls
