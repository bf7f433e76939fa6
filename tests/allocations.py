"""A dispatch mode that records the sizes of the tensors operations allocate, for tests of
how many buffers of a given size a backward pass needs."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class Allocations(TorchDispatchMode):
    """The sizes (entries) of the tensors that operations return in fresh memory: neither
    one of their arguments (in place, `out=`) nor a view."""

    def __init__(self):
        super().__init__()
        self.sizes: list[int] = [0]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        given = [t for t in torch.utils._pytree.tree_leaves((args, kwargs))
                 if isinstance(t, torch.Tensor)]
        for t in torch.utils._pytree.tree_leaves(out):
            if (isinstance(t, torch.Tensor) and not t._is_view()
                    and not any(t is a for a in given)):
                self.sizes.append(t.numel())
        return out


class Operations(TorchDispatchMode):
    """The operations run, by name, views left out: what a step costs in dispatches (and
    on a GPU in kernel launches), whatever the size of its tensors."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.names.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))
