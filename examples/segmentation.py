"""Semantic segmentation trained on mean IoU, with void pixels left out (`ignore_index=255`).

Synthetic images (nothing is downloaded): squares and discs of the same random colours on
a noisy background, so that a pixel's class depends on the shape around it, not on its
colour. As in Pascal VOC, a one-pixel ring on every object boundary is marked void (255):
those pixels count for neither the loss nor the metric. A small dilated conv net outputs
`(N, C, H, W)` logits, trained with `SoftIoULoss` (1 - soft mean IoU) plus a little
cross-entropy; `.metric()` reports the exact mean IoU and `SoftDiceLoss.metric()` the
exact Dice, both on held-out images, before and after training.

    python examples/segmentation.py           # under a minute on a CPU
    python examples/segmentation.py --tiny    # a few steps, to check that it runs
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from softmetrics import SoftDiceLoss, SoftIoULoss
from softmetrics.functional import soft_jaccard_index

BACKGROUND, SQUARE, DISC = 0, 1, 2
CLASSES = ("background", "square", "disc")
VOID = 255


def make_images(n: int, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """`n` RGB images `(n, 3, size, size)` and their masks `(n, size, size)` (int64, with
    VOID on object boundaries)."""
    objects = 3
    rows = torch.arange(size).view(1, size, 1).float()
    cols = torch.arange(size).view(1, 1, size).float()
    image = 0.3 * torch.randn(n, 3, size, size, generator=generator)
    mask = torch.full((n, size, size), BACKGROUND, dtype=torch.long)
    for _ in range(objects):  # later objects cover earlier ones
        centre = torch.rand(n, 2, 1, 1, generator=generator) * size
        radius = 2.5 + 3.5 * torch.rand(n, 1, 1, generator=generator)
        kind = torch.randint(SQUARE, DISC + 1, (n, 1, 1), generator=generator)
        dy, dx = rows - centre[:, 0], cols - centre[:, 1]
        inside = torch.where(kind == SQUARE, torch.maximum(dy.abs(), dx.abs()) <= radius,
                             dy ** 2 + dx ** 2 <= radius ** 2)
        colour = 0.5 + torch.rand(n, 3, 1, 1, generator=generator)  # same for both shapes
        image = torch.where(inside[:, None], colour + 0.2 * image, image)
        mask = torch.where(inside, kind, mask)
    # void ring: pixels whose 3x3 neighbourhood holds more than one class
    m = mask[:, None].float()
    boundary = (F.max_pool2d(m, 3, 1, 1) != -F.max_pool2d(-m, 3, 1, 1))[:, 0]
    return image, mask.masked_fill(boundary, VOID)


class TinySegNet(nn.Module):
    """Four 3x3 convolutions with dilations 1, 2, 4, 1 (a 17-pixel receptive field)."""

    def __init__(self, width: int = 16, num_classes: int = len(CLASSES)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for dilation in (1, 2, 4, 1):
            layers += [nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation),
                       nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        layers.append(nn.Conv2d(width, num_classes, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image)  # (N, C, H, W) logits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few steps on a few images")
    parser.add_argument("--steps", type=int, default=None, help="training steps")
    parser.add_argument("--ce-weight", type=float, default=0.5,
                        help="weight of the cross-entropy term (0: IoU alone)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = args.steps if args.steps is not None else (5 if args.tiny else 200)
    size, batch, n_test = (16, 4, 8) if args.tiny else (32, 16, 64)

    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    test_images, test_masks = make_images(n_test, size, g)
    model = TinySegNet()
    # mean IoU over the three classes, pooled over all pixels of the batch; VOID pixels
    # take no part. Cross-entropy (with the same ignore_index) gives the soft counts of a
    # random network a useful direction early on.
    iou_loss = SoftIoULoss(task="multiclass", num_classes=len(CLASSES), ignore_index=VOID)
    dice = SoftDiceLoss(task="multiclass", num_classes=len(CLASSES), ignore_index=VOID)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def report(when: str) -> None:
        model.eval()
        with torch.no_grad():
            logits = model(test_images)
            miou = iou_loss.metric(logits, test_masks)  # exact mean IoU (temperature 0)
            dice_score = dice.metric(logits, test_masks)  # exact Dice (= F1), macro
            # the functional at temperature 0 is the same exact metric, here per class
            per_class = soft_jaccard_index(logits, test_masks, task="multiclass",
                                           num_classes=len(CLASSES), average="none",
                                           ignore_index=VOID, temperature=0)
        model.train()
        classes = ", ".join(f"{c} {v:.3f}"
                            for c, v in zip(CLASSES, per_class.tolist(), strict=True))
        print(f"{when}: mean IoU {miou:.4f}, Dice {dice_score:.4f} ({classes})")

    void = (test_masks == VOID).float().mean()
    print(f"{n_test} test images of {size}x{size} pixels, {void:.1%} of them void")
    report("before training")
    for _ in range(steps):
        images, masks = make_images(batch, size, g)  # a fresh batch every step
        logits = model(images)
        ce = F.cross_entropy(logits, masks, ignore_index=VOID)
        loss = iou_loss(logits, masks) + args.ce_weight * ce
        opt.zero_grad()
        loss.backward()
        opt.step()
    report(f"after {steps} steps of {batch} images")


if __name__ == "__main__":
    main()
