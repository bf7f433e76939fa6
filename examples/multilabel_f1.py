"""Multilabel classification trained on macro F1, against binary cross-entropy.

Synthetic data (nothing is downloaded): 32 features and 8 labels whose frequencies run
from about 2% to 30%, each label a noisy linear function of the features. The same small
MLP is trained twice from the same initialisation, once with
`SoftF1Loss(task="multilabel", average="macro")` and once with
`F.binary_cross_entropy_with_logits`; `.metric()` reports the exact macro F1 of both on
held-out samples, at the decision threshold 0.5 that both are evaluated with.

    python examples/multilabel_f1.py          # under a minute on a CPU
    python examples/multilabel_f1.py --tiny   # a few steps, to check that it runs
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from softmetrics import SoftF1Loss
from softmetrics.functional import soft_f1_score

FEATURES, LABELS = 32, 8


def make_data(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Features `(n, FEATURES)` and 0/1 labels `(n, LABELS)` (int64)."""
    weights = torch.randn(FEATURES, LABELS, generator=torch.Generator().manual_seed(123))
    weights = weights / weights.norm(dim=0)
    # label j is on when a noisy score passes a threshold set for its frequency
    frequency = torch.logspace(-1.7, -0.5, LABELS)  # 2% ... 32%
    threshold = torch.distributions.Normal(0.0, 1.25).icdf(1 - frequency)
    x = torch.randn(n, FEATURES, generator=generator)
    score = x @ weights + 0.75 * torch.randn(n, LABELS, generator=generator)
    return x, (score > threshold).long()


def train(model: nn.Module, loss_fn, x: Tensor, y: Tensor, steps: int, batch: int,
          generator: torch.Generator) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=generator)
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few steps on a few samples")
    parser.add_argument("--steps", type=int, default=None, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = args.steps if args.steps is not None else (5 if args.tiny else 1500)
    n_train, n_test, batch = (256, 256, 64) if args.tiny else (8000, 4000, 512)

    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    x, y = make_data(n_train, g)
    x_test, y_test = make_data(n_test, g)
    print(f"label frequencies (test): {[round(f, 3) for f in y_test.float().mean(0).tolist()]}")

    # 1 - soft macro F1 over the 8 labels. F1 is a ratio of counts over the batch, so the
    # batch should hold a few positives of the rarest label (512 x 2% here); see
    # `momentum` on the Data-parallel training page for smaller batches.
    f1_loss = SoftF1Loss(task="multilabel", num_classes=LABELS, average="macro")
    initial = nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, LABELS))

    def macro_f1(model: nn.Module) -> float:
        with torch.no_grad():
            return float(f1_loss.metric(model(x_test), y_test))  # exact, threshold 0.5

    print(f"before training: macro F1 {macro_f1(initial):.4f}")
    models = {
        "SoftF1Loss": train(copy.deepcopy(initial), f1_loss, x, y, steps, batch, g),
        "binary cross-entropy": train(
            copy.deepcopy(initial),
            lambda z, t: F.binary_cross_entropy_with_logits(z, t.float()),
            x, y, steps, batch, g),
    }
    for name, model in models.items():
        with torch.no_grad():  # the functional at temperature 0 is the same exact metric
            per_label = soft_f1_score(model(x_test), y_test, task="multilabel",
                                      num_classes=LABELS, average="none", temperature=0)
        print(f"after {steps} steps with {name}: macro F1 {macro_f1(model):.4f} "
              f"(per label {[round(v, 3) for v in per_label.tolist()]})")


if __name__ == "__main__":
    main()
