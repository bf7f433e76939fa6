"""The Segmentation page's first example: a Dice loss on (N, C, H, W) logits with void pixels.

Synthetic images (nothing is downloaded): a bright rectangle (class 1) and a dark one
(class 2) on noise (class 0), with a one-pixel void ring (255) around each rectangle that
counts for neither the loss nor the metric. A small conv net is trained with
`SoftDiceLoss` plus a little cross-entropy; `SoftJaccardLoss.metric()` reports the exact
mean IoU on held-out images before and after training.

    python examples/segmentation_quickstart.py           # a few seconds on a CPU
    python examples/segmentation_quickstart.py --tiny    # a few steps
"""

from __future__ import annotations

# --8<-- [start:example]
import sys

import torch
import torch.nn.functional as F
from torch import nn

from softmetrics import SoftDiceLoss, SoftJaccardLoss

C, VOID = 3, 255  # background, bright, dark; the void label


def make_batch(n: int, g: torch.Generator, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, size, size) images and (n, size, size) int64 masks with a void ring."""
    yx = torch.arange(size)
    noise = torch.randn(n, 1, size, size, generator=g)  # as strong as the signal
    image = noise
    mask = torch.zeros(n, size, size, dtype=torch.long)
    for cls, level in ((1, 1.0), (2, -1.0)):
        lo = torch.randint(0, size - 12, (n, 2, 1), generator=g)
        hi = lo + torch.randint(4, 12, (n, 2, 1), generator=g)
        rows = (yx >= lo[:, 0]) & (yx < hi[:, 0])  # (n, size)
        cols = (yx >= lo[:, 1]) & (yx < hi[:, 1])
        inside = rows[:, :, None] & cols[:, None, :]
        image = torch.where(inside[:, None], level + noise, image)  # the dark one on top
        mask = torch.where(inside, cls, mask)
    m = mask[:, None].float()
    edge = (F.max_pool2d(m, 3, 1, 1) != -F.max_pool2d(-m, 3, 1, 1))[:, 0]
    return image, mask.masked_fill(edge, VOID)


def train(steps: int = 150, seed: int = 0) -> None:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=2, dilation=2), nn.ReLU(),
                          nn.Conv2d(16, C, 1))  # (N, C, H, W) logits
    dice = SoftDiceLoss(task="multiclass", num_classes=C, ignore_index=VOID)
    iou = SoftJaccardLoss(task="multiclass", num_classes=C, ignore_index=VOID)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    test_images, test_masks = make_batch(32, g)

    def report(when: str) -> None:
        with torch.no_grad():
            logits = model(test_images)
        # .metric(): the exact mean IoU / Dice of the argmax (temperature 0), no gradient
        print(f"{when}: mean IoU {iou.metric(logits, test_masks):.4f}, "
              f"Dice {dice.metric(logits, test_masks):.4f}")

    report("before training")
    for _ in range(steps):
        images, masks = make_batch(16, g)
        logits = model(images)
        loss = dice(logits, masks) + 0.5 * F.cross_entropy(logits, masks, ignore_index=VOID)
        opt.zero_grad()
        loss.backward()
        opt.step()
    report(f"after {steps} steps")


if __name__ == "__main__":
    train(steps=5 if "--tiny" in sys.argv else 150)
# --8<-- [end:example]
