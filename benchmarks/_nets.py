"""Many small convolutional networks trained at once, for the canvas tasks of `compare_ce.py`.

G independent networks (seeds x configurations) are one network whose every convolution is
grouped (`groups=G`): network g sees channel g of the input and its own weights, and
nothing couples two networks. Parameters have a leading axis G, so that a batched Adam
gives every network its own learning rate. For one seed, every configuration and every
loss starts from the same weights and sees the same batches: comparisons are paired down to
the initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from _common import BatchedAdam
from torch import Tensor

# a layer: (output channels, input channels, kernel side)
Layer = tuple[int, int, int]


def unet_layers(width: int, classes: int) -> list[Layer]:
    """A 4-level U-Net with one 3x3 convolution per level and side: `width`, 2x, 4x and 4x
    channels going down, skip connections concatenated going up, a 1x1 head."""
    c = width
    return [(c, 1, 3), (2 * c, c, 3), (4 * c, 2 * c, 3), (4 * c, 4 * c, 3), (2 * c, 8 * c, 3),
            (2 * c, 4 * c, 3), (classes, 3 * c, 1)]


def cnn_layers(width: int, labels: int) -> list[Layer]:
    """Four 3x3 convolutions (three 2x2 poolings between them), global max pooling, and a
    linear layer (a 1x1 convolution) to `labels` logits."""
    c = width
    return [(c, 1, 3), (2 * c, c, 3), (4 * c, 2 * c, 3), (4 * c, 4 * c, 3), (labels, 4 * c, 1)]


def init(layers: Sequence[Layer], seeds: Sequence[int], configs: int) -> list[Tensor]:
    """Weights (He uniform) and zero biases, shape (G, ...) with G = seeds x configs
    (network g = seed g // configs): identical across configurations for one seed."""
    params: list[Tensor] = []
    per_seed = []
    for seed in seeds:
        g = torch.Generator().manual_seed(2_000_003 * seed + 11)
        per_seed.append([(torch.rand(o, i, k, k, generator=g) * 2 - 1) * math.sqrt(6 / (i * k * k))
                         for o, i, k in layers])
    for j, (o, _, _) in enumerate(layers):
        w = torch.stack([p[j] for p in per_seed]).repeat_interleave(configs, 0)
        params += [w.contiguous().requires_grad_(),
                   torch.zeros(w.shape[0], o).requires_grad_()]
    return params


def _conv(params: Sequence[Tensor], j: int, x: Tensor) -> Tensor:
    w, b = params[2 * j], params[2 * j + 1]
    return F.conv2d(x, w.flatten(0, 1), b.flatten(), padding=w.shape[-1] // 2,
                    groups=w.shape[0])


def _cat(a: Tensor, b: Tensor, groups: int) -> Tensor:
    """Concatenate the channels of each network (group), keeping the groups contiguous."""
    n, _, h, w = a.shape
    return torch.cat([a.view(n, groups, -1, h, w), b.view(n, groups, -1, h, w)],
                     dim=2).flatten(1, 2)


def unet(params: Sequence[Tensor], x: Tensor) -> Tensor:
    """`x` (B, G, S, S): one image per network -> logits (B, G, C, S, S), at the canvas's
    full resolution (a 2x2-pooled input, tried first, left the strokes of the small digits
    one or two pixels wide and the rare digits unrecognised)."""
    g, side = x.shape[1], x.shape[-1]
    e1 = F.relu(_conv(params, 0, x))
    e2 = F.relu(_conv(params, 1, F.max_pool2d(e1, 2)))
    e3 = F.relu(_conv(params, 2, F.max_pool2d(e2, 2)))
    z = F.relu(_conv(params, 3, F.max_pool2d(e3, 2)))
    z = F.relu(_conv(params, 4, _cat(F.interpolate(z, scale_factor=2.0), e3, g)))
    z = F.relu(_conv(params, 5, _cat(F.interpolate(z, scale_factor=2.0), e2, g)))
    z = _conv(params, 6, _cat(F.interpolate(z, scale_factor=2.0), e1, g))
    return z.view(x.shape[0], g, -1, side, side)


def cnn(params: Sequence[Tensor], x: Tensor) -> Tensor:
    """`x` (B, G, S, S): one image per network -> logits (B, G, L), from the full-resolution
    canvas as `unet`."""
    g = x.shape[1]
    z = F.max_pool2d(F.relu(_conv(params, 0, x)), 2)
    z = F.max_pool2d(F.relu(_conv(params, 1, z)), 2)
    z = F.max_pool2d(F.relu(_conv(params, 2, z)), 2)
    z = F.relu(_conv(params, 3, z)).amax(dim=(2, 3), keepdim=True)
    return _conv(params, 4, z).view(x.shape[0], g, -1)


def expand(params: Sequence[Tensor], configs: int) -> list[Tensor]:
    """Copies of one network per seed (G = S) for each configuration (G = S x configs),
    as fresh leaves."""
    return [p.detach().repeat_interleave(configs, 0).requires_grad_() for p in params]


TICKS = 10  # progress-bar steps per training run


def batch_order(seeds: Sequence[int], n: int, batch: int, steps: int, stage: int = 0
                ) -> Tensor:
    """(steps, S, B) training indices: epochs of a permutation fixed per seed and stage."""
    out = []
    for seed in seeds:
        g = torch.Generator().manual_seed(7919 * seed + 101 * stage + 5)
        rows: list[Tensor] = []
        while len(rows) < steps:
            perm = torch.randperm(n, generator=g)
            rows.extend(perm[i:i + batch] for i in range(0, n - batch + 1, batch))
        out.append(torch.stack(rows[:steps]))
    return torch.stack(out, dim=1)


def per_network(x: Tensor, configs: int) -> Tensor:
    """(B, S, ...) per-seed tensors -> (B, S x configs, ...), network g = seed g // configs."""
    return x.repeat_interleave(configs, dim=1)


def train(net: Callable[[Sequence[Tensor], Tensor], Tensor], params: list[Tensor],
          lrs: Sequence[float], images: Tensor, targets: Tensor,
          objective: Callable[[Tensor, Tensor], Tensor], *, seeds: Sequence[int],
          configs: int, steps: int, batch: int, stage: int = 0,
          tick: Callable[[int], object] | None = None) -> list[Tensor]:
    """Train the G = S x configs networks of `params` at once.

    `images` is (S, N, S, S) (the training canvases of each seed), `targets` (S, N, ...);
    `objective(logits, targets)` gets every network's logits (B, G, ...) and its seed's
    targets (B, G, ...) and returns the sum of the networks' losses. `stage` chooses the
    batch order (pretraining and fine-tuning see different ones); `tick(n)` advances a
    progress bar by `TICKS` over the run.
    """
    adam = BatchedAdam(params, [lr for _ in seeds for lr in lrs])
    order = batch_order(seeds, images.shape[1], batch, steps, stage)
    rows = torch.arange(len(seeds))[:, None]
    for step in range(steps):
        idx = order[step]
        x = per_network(images[rows, idx].transpose(0, 1), configs)
        y = per_network(targets[rows, idx].transpose(0, 1), configs)
        loss = objective(net(params, x), y)
        adam.step(torch.autograd.grad(loss, params))
        if tick is not None:
            tick(TICKS * (step + 1) // steps - TICKS * step // steps)
    return params


@torch.no_grad()
def predict(net: Callable[[Sequence[Tensor], Tensor], Tensor], params: Sequence[Tensor],
            images: Tensor, configs: int, reduce: Callable[[Tensor], Tensor],
            chunk: int = 32) -> Tensor:
    """`reduce(logits)` of every network on its seed's `images` (S, N, S, S), in chunks:
    (N, G, ...)."""
    out = []
    for i in range(0, images.shape[1], chunk):
        x = per_network(images[:, i:i + chunk].transpose(0, 1), configs)
        out.append(reduce(net(params, x)))
    return torch.cat(out)
