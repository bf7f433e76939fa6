"""A dispatch mode that records the sizes of the tensors operations allocate, for tests of
how many buffers of a given size a backward pass needs."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def _storage(t: torch.Tensor) -> int | None:
    """Which memory a tensor lies in: its storage, which aliases share (also on meta,
    where tensors have shapes and storages but no data, so no address); None for a
    tensor without storage (a sparse tensor)."""
    try:
        return t.untyped_storage()._cdata
    except RuntimeError:
        return None


def _leaves(tree):
    """The leaves of a pytree (`tree_leaves` is newer than torch 2.1)."""
    return torch.utils._pytree.tree_flatten(tree)[0]


class Allocations(TorchDispatchMode):
    """The sizes (entries) of the tensors that operations return in fresh memory: neither
    one of their arguments (in place, `out=`), a view nor another alias of an argument's
    memory (`detach`)."""

    def __init__(self):
        super().__init__()
        self.sizes: list[int] = [0]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        given = [t for t in _leaves((args, kwargs))
                 if isinstance(t, torch.Tensor)]
        memory = {_storage(a) for a in given} - {None}
        for t in _leaves(out):
            if (isinstance(t, torch.Tensor) and not t._is_view()
                    and not any(t is a for a in given) and _storage(t) not in memory):
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


class Synchronisations(TorchDispatchMode):
    """The operations that read tensor data on the host, by name: on a GPU each one waits
    for the device (`.item()`, `bool(tensor)`, a boolean mask's `nonzero`). `Tensor.tolist`
    reads the data without a dispatch: `count_tolist` counts its calls too."""

    READS: ClassVar[frozenset[str]] = frozenset({
        "_local_scalar_dense", "nonzero", "masked_select", "unique_dim", "_unique2",
        "repeat_interleave"})

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        boolean_index = name in ("index", "index_put", "index_put_") and any(
            isinstance(t, torch.Tensor) and t.dtype == torch.bool
            for t in _leaves(args[1:]))
        if name in self.READS or boolean_index:
            self.names.append(name)
        return func(*args, **(kwargs or {}))

    def count_tolist(self, monkeypatch):
        """Count `Tensor.tolist` calls (made while this mode is active) as reads too."""
        original = torch.Tensor.tolist

        def tolist(tensor):
            self.names.append("tolist")
            return original(tensor)

        monkeypatch.setattr(torch.Tensor, "tolist", tolist)
        return self
