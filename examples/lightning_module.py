"""A PyTorch Lightning module trained on macro F1 with `SoftF1Loss`, logging the exact F1.

Synthetic data (nothing is downloaded): 16 features, 5 classes with frequencies from 45%
down to 5%. The module trains with `1 - soft macro F1` and logs the exact macro F1 of
each batch through the loss's `.metric()`, next to torchmetrics' `MulticlassF1Score`.
With `--devices 2` it runs data-parallel on two CPU processes (gloo): the loss sums its
soft counts over the processes (`sync_dist=True`), so both optimise the F1 of the global
batch, and `.metric()` reports the exact F1 of the global batch.

    python examples/lightning_module.py                # one process, under a minute
    python examples/lightning_module.py --devices 2    # DDP on two CPU processes
    python examples/lightning_module.py --tiny         # a few steps, to check that it runs
"""

from __future__ import annotations

import argparse
import warnings

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassF1Score

from softmetrics import SoftF1Loss

FEATURES, CLASSES = 16, 5


# --8<-- [start:module]
class F1Classifier(L.LightningModule):
    def __init__(self, lr: float = 1e-2) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, CLASSES))
        # 1 - soft macro F1. sync_dist=True: under DDP the soft counts of every process
        # are summed, with gradient, before the formula, so each process computes the F1
        # of the global batch; in a single process it changes nothing.
        self.loss_fn = SoftF1Loss(task="multiclass", num_classes=CLASSES, average="macro",
                                  sync_dist=True)
        # torchmetrics' macro F1 accumulates counts over the epoch (and the processes)
        self.val_f1 = MulticlassF1Score(num_classes=CLASSES, average="macro")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)  # a collective under DDP: every process calls it
        # both values are those of the global batch already, the same on every process
        self.log("train_loss", loss)
        self.log("train_f1", self.loss_fn.metric(logits, y))  # exact macro F1, no gradient
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        # the exact F1 of this (global) batch; over several batches Lightning logs their
        # mean weighted by batch size, which is not the F1 of the epoch
        self.log("val_f1", self.loss_fn.metric(logits, y), batch_size=len(y), sync_dist=True)
        # torchmetrics: counts summed over the epoch's batches and over the processes,
        # then one F1 (logging the Metric object lets Lightning compute and reset it)
        self.val_f1.update(logits, y)
        self.log("val_f1_torchmetrics", self.val_f1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
# --8<-- [end:module]


def make_data(n: int, seed: int) -> TensorDataset:
    """`n` samples, shuffled: 45%, 25%, 15%, 10% and 5% of them (at least one) of class
    0 to 4, each a class centre plus unit noise in every feature."""
    g = torch.Generator().manual_seed(seed)
    centres = 1.2 * torch.randn(CLASSES, FEATURES, generator=torch.Generator().manual_seed(7))
    counts = (torch.tensor([0.05, 0.10, 0.15, 0.25]) * n).long().clamp_min(1)
    counts = torch.cat([(n - counts.sum()).view(1), counts.flip(0)])
    y = torch.repeat_interleave(torch.arange(CLASSES), counts)
    y = y[torch.randperm(n, generator=g)]
    x = centres[y] + torch.randn(n, FEATURES, generator=g)
    return TensorDataset(x, y)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few steps on a few samples")
    parser.add_argument("--devices", type=int, default=1, help="CPU processes (DDP if > 1)")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (2 if args.tiny else 20)
    n_train, n_val, batch = (128, 64, 32) if args.tiny else (4096, 1024, 256)
    # a one-process DataLoader is plenty for tensors already in memory
    warnings.filterwarnings("ignore", ".*does not have many workers.*")

    L.seed_everything(0, verbose=False)
    # --8<-- [start:trainer]
    trainer = L.Trainer(
        accelerator="cpu", devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",  # gloo on CPU, nccl on GPUs
        max_epochs=epochs, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False)
    # --8<-- [end:trainer]
    train = DataLoader(make_data(n_train, 1), batch_size=batch, shuffle=True)
    # the validation set in one batch per process, so that the per-batch `.metric()` and
    # torchmetrics' epoch value are computed on the same samples
    val = DataLoader(make_data(n_val, 2), batch_size=n_val)
    model = F1Classifier()
    before = trainer.validate(model, val, verbose=False)[0]
    trainer.fit(model, train, val)
    after = trainer.callback_metrics
    if trainer.is_global_zero:
        processes = f"{trainer.world_size} process{'es' if trainer.world_size > 1 else ''}"
        for when, logged in [("before training", before), (f"after {epochs} epochs", after)]:
            print(f"{when} ({processes}): validation macro F1 {float(logged['val_f1']):.4f} "
                  f"(.metric()), {float(logged['val_f1_torchmetrics']):.4f} (torchmetrics)")


if __name__ == "__main__":
    main()
