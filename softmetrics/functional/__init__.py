"""The functional API: every metric as a function of raw scores and targets.

`soft_<metric>(input, target, *, temperature=1.0, ...)` returns the smooth surrogate;
`temperature=0` returns the exact metric.
"""

from __future__ import annotations

from .classification import *  # noqa: F403
from .classification import __all__ as _classification_all
from .contrastive import *  # noqa: F403
from .contrastive import __all__ as _contrastive_all
from .ranking import *  # noqa: F403
from .ranking import __all__ as _ranking_all
from .text import *  # noqa: F403
from .text import __all__ as _text_all

__all__ = [*_classification_all, *_ranking_all, *_text_all, *_contrastive_all]
