"""Peer libraries used as references by the tests and the benchmarks, loaded on demand.

segmentation_models_pytorch (smp) imports its encoders (timm, torchvision) at the top of its
package, but its losses need only torch. The losses are loaded without the package's
`__init__`, so that they can be compared on an install of torch that has no matching
torchvision (e.g. `pip install --no-deps segmentation-models-pytorch`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any


def smp_losses() -> Any:
    """`segmentation_models_pytorch.losses`, or ImportError when smp is not installed."""
    name = "segmentation_models_pytorch"
    loaded = sys.modules.get(name)
    if loaded is None:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError(f"{name} is not installed")
        package = types.ModuleType(name)
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = package
    return importlib.import_module(f"{name}.losses")
