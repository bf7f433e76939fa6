"""CLIP-style contrastive training of two encoders with a learned temperature.

Synthetic paired data (nothing is downloaded): a hidden 8-dimensional cause `z` is seen
through two different noisy non-linear "modalities", a 32-dimensional view `a` and a
24-dimensional view `b`. Two small encoders map each view to a 16-dimensional embedding,
trained with the symmetric InfoNCE loss of CLIP, `InfoNCELoss(symmetric=True,
learn_temperature=True)`. `.metric()` reports the exact top-1 retrieval accuracy on
held-out pairs (each `a` must find its own `b` among all of them), before and after
training, and the script prints the temperature the loss has learned.

    python examples/clip_infonce.py          # under a minute on a CPU
    python examples/clip_infonce.py --tiny   # a few steps, to check that it runs
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor, nn

from softmetrics import InfoNCELoss

LATENT, DIM_A, DIM_B, EMBED = 8, 32, 24, 16


def make_pairs(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """`n` paired views `(n, DIM_A)` and `(n, DIM_B)` of shared hidden causes."""
    fixed = torch.Generator().manual_seed(321)  # the two "sensors" are the same every call
    mix_a = torch.randn(LATENT, DIM_A, generator=fixed) / LATENT ** 0.5
    mix_b = torch.randn(LATENT, DIM_B, generator=fixed) / LATENT ** 0.5
    z = torch.randn(n, LATENT, generator=generator)
    a = torch.tanh(2 * z @ mix_a) + 0.1 * torch.randn(n, DIM_A, generator=generator)
    b = torch.sin(2 * z @ mix_b) + 0.1 * torch.randn(n, DIM_B, generator=generator)
    return a, b


def encoder(dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, EMBED))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few steps on a few pairs")
    parser.add_argument("--steps", type=int, default=None, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = args.steps if args.steps is not None else (5 if args.tiny else 600)
    batch, n_test = (32, 64) if args.tiny else (256, 1000)

    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    encode_a, encode_b = encoder(DIM_A), encoder(DIM_B)
    # CLIP's loss: cross-entropy of each `a` over all `b` of the batch and of each `b`
    # over all `a`, on cosine similarities divided by a temperature that starts at 0.07
    # and is learned (kept on a log scale, bounded below by min_temperature = 0.01).
    loss_fn = InfoNCELoss(temperature=0.07, learn_temperature=True, symmetric=True)

    # The learned temperature is a parameter of the *loss* (`loss_fn.log_temperature`),
    # not of either encoder. An optimizer built from the encoders' parameters alone
    # computes its gradient and never applies it: the temperature would stay at 0.07.
    # It gets no weight decay, which would pull the log-temperature towards 0, i.e. the
    # temperature towards 1 (OpenCLIP's training script, src/training/main.py in
    # mlfoundations/open_clip, exempts its logit scale likewise).
    opt = torch.optim.AdamW([
        {"params": [*encode_a.parameters(), *encode_b.parameters()], "weight_decay": 0.01},
        {"params": loss_fn.parameters(), "weight_decay": 0.0},
    ], lr=2e-3)

    a_test, b_test = make_pairs(n_test, g)

    def retrieval(when: str) -> None:
        with torch.no_grad():  # exact top-1 accuracy of a -> b among all n_test pairs
            accuracy = loss_fn.metric(encode_a(a_test), encode_b(b_test))
            temperature = float(loss_fn.temperature)
        print(f"{when}: top-1 retrieval accuracy {accuracy:.4f} among {n_test} pairs "
              f"(chance {1 / n_test:.4f}), temperature {temperature:.4f}")

    retrieval("before training")
    for _ in range(steps):
        a, b = make_pairs(batch, g)
        loss = loss_fn(encode_a(a), encode_b(b))
        opt.zero_grad()
        loss.backward()
        opt.step()
    retrieval(f"after {steps} steps")


if __name__ == "__main__":
    main()
