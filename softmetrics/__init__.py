"""softmetrics: smooth, differentiable surrogates of discrete evaluation metrics.

One formula, two relaxations: every metric is `formula(statistics(decision(scores)))`;
at `temperature=0` the decision is the exact one and the value is the exact metric.
"""

from __future__ import annotations

from . import functional
from .losses import *  # noqa: F403
from .losses import __all__ as _losses_all

__version__ = "0.1.0"

__all__ = ["__version__", "functional", *_losses_all]
