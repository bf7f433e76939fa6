"""The sequence-to-sequence machinery of `_g2p.py` and `expected_bleu_alpha.py`, data apart.

A bidirectional GRU encoder over source symbols and a GRU decoder with dot-product attention
over target symbols (`Seq2Seq`); `pretrain` trains it with token cross-entropy, and
`finetune` continues from a pretrained network with one of the fine-tuning objectives of
`VARIANTS`:

- (a) token cross-entropy only,
- (b) `(1 - w) * cross-entropy + w * ExpectedBLEULoss` on sampled candidates (minimum risk
  training, Shen et al. 2016; Edunov et al. 2018), with per-token (length-normalised)
  candidate scores,
- (c) `(1 - w) * cross-entropy + w * SoftBLEULoss` on the teacher-forced distributions.

A task gives its data as padded tensors of symbol ids (`Vocab.encode`), `PAD` after the end,
every target ending with `EOS`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ["<pad>", "<bos>", "<eos>"]

# variant key -> (label, the softmetrics Loss it mixes with cross-entropy)
VARIANTS = {
    "ce": ("(a) cross-entropy", None),
    "expected_bleu": ("(b) CE + w·ExpectedBLEU", "ExpectedBLEULoss"),
    "soft_bleu": ("(c) CE + w·SoftBLEU", "SoftBLEULoss"),
}


@dataclass(frozen=True)
class Budget:
    """The training budget of one run: the same for every variant."""

    pretrain_steps: int
    finetune_steps: int
    batch: int
    samples: int  # candidates per source for expected BLEU
    configs: int  # (learning rate, w) configurations per variant
    emb: int
    hidden: int
    pretrain_lr: float = 5e-3


def check_variants() -> None:
    """Stop with a clear message when this softmetrics lacks one of the BLEU losses."""
    import softmetrics

    for _, name in VARIANTS.values():
        if name is not None and not hasattr(softmetrics, name):
            raise SystemExit(f"compare_ce: the sequence task needs softmetrics.{name}, which "
                             f"this softmetrics does not have")


class Vocab:
    """The symbols of one side, after the special ones: a fixed alphabet, not a statistic
    of a split."""

    def __init__(self, symbols: list[str]) -> None:
        self.itos = SPECIALS + sorted(set(symbols))
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, symbols: list[str] | str, eos: bool = True) -> list[int]:
        return [self.stoi[s] for s in symbols] + ([EOS] if eos else [])

    def decode(self, ids: list[int]) -> list[str]:
        out = []
        for i in ids:
            if i == EOS:
                break
            if i > EOS:
                out.append(self.itos[i])
        return out


def pad(rows: list[list[int]]) -> Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.long)


# ---------------------------------------------------------------------------------------
# model


class Seq2Seq(nn.Module):
    """Bidirectional GRU encoder; GRU decoder with dot-product attention on its output
    (Luong et al. 2015, without input feeding), so that a teacher-forced pass is one GRU
    call and one batched attention instead of a loop over positions. The special symbols
    PAD and BOS are never output."""

    def __init__(self, src_size: int, tgt_size: int, emb: int, hidden: int) -> None:
        super().__init__()
        self.src_emb = nn.Embedding(src_size, emb, padding_idx=PAD)
        self.encoder = nn.GRU(emb, hidden // 2, batch_first=True, bidirectional=True)
        self.tgt_emb = nn.Embedding(tgt_size, emb, padding_idx=PAD)
        self.decoder = nn.GRU(emb, hidden, batch_first=True)
        self.query = nn.Linear(hidden, hidden, bias=False)
        self.out = nn.Linear(2 * hidden, tgt_size)
        self.register_buffer("never", torch.arange(tgt_size) < EOS, persistent=False)

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Memory (B, S, H), its mask (B, S) and the decoder's initial state (1, B, H)."""
        memory, last = self.encoder(self.src_emb(src))
        state = torch.cat([last[0], last[1]], dim=-1)[None]
        return memory, src != PAD, state

    def attend(self, states: Tensor, memory: Tensor, mask: Tensor) -> Tensor:
        """Logits (B, T, V) from decoder states (B, T, H) and their attention over memory."""
        scores = torch.einsum("bth,bsh->bts", self.query(states), memory)
        attn = torch.softmax(scores.masked_fill(~mask[:, None], -1e9), dim=-1)
        context = torch.einsum("bts,bsh->bth", attn, memory)
        logits = self.out(torch.cat([states, context], dim=-1))
        return logits.masked_fill(self.never, -1e9)

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        """Teacher-forced logits (B, T, V) for the target `tgt` (B, T)."""
        memory, mask, state = self.encode(src)
        inputs = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], dim=1)
        states, _ = self.decoder(self.tgt_emb(inputs), state)
        return self.attend(states, memory, mask)

    def sequence_log_probs(self, src: Tensor, tokens: Tensor) -> Tensor:
        """Log-probabilities (B, K) of K outputs per source, `tokens` (B, K, T) ending at
        their first EOS (PAD after it), with gradient."""
        b, k, t = tokens.shape
        flat = tokens.reshape(b * k, t)
        logits = self(src.repeat_interleave(k, 0), flat)
        lp = torch.log_softmax(logits, dim=-1).gather(2, flat[..., None])[..., 0]
        return (lp * (flat != PAD)).sum(-1).view(b, k)

    @torch.no_grad()
    def generate(self, src: Tensor, max_len: int, *, sample: int = 0,
                 generator: torch.Generator | None = None) -> Tensor:
        """Greedy (`sample=0`) or `sample` sampled outputs per source: tokens (B, K, T),
        PAD after the first EOS."""
        memory, mask, state = self.encode(src)
        k = max(1, sample)
        memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
        state = state.repeat_interleave(k, 1)
        b = memory.shape[0]
        token = torch.full((b,), BOS, dtype=torch.long, device=src.device)
        done = torch.zeros(b, dtype=torch.bool, device=src.device)
        tokens = []
        for _ in range(max_len):
            out, state = self.decoder(self.tgt_emb(token)[:, None], state)
            z = self.attend(out, memory, mask)[:, 0]
            if sample:
                token = torch.multinomial(torch.softmax(z, -1), 1, generator=generator)[:, 0]
            else:
                token = z.argmax(-1)
            token = token.masked_fill(done, PAD)
            tokens.append(token)
            done = done | (token == EOS)
        return torch.stack(tokens, dim=1).view(-1, k, max_len)


# ---------------------------------------------------------------------------------------
# training and decoding


def _trim(src: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
    """A batch without the columns that are padding in every row (a shorter decoder loop)."""
    return (src[:, :int((src != PAD).sum(1).max())],
            tgt[:, :int((tgt != PAD).sum(1).max())])


def token_ce(model: Seq2Seq, src: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
    logits = model(src, tgt)
    return F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=PAD), logits


def batches(n: int, batch: int, steps: int, seed: int) -> list[Tensor]:
    """`steps` batches of row indices: epochs of a permutation fixed by `seed`."""
    g = torch.Generator().manual_seed(seed)
    out: list[Tensor] = []
    while len(out) < steps:
        perm = torch.randperm(n, generator=g)
        out += [perm[i:i + batch] for i in range(0, n - batch + 1, batch)]
    return out[:steps]


def symbols_only(tokens: Tensor) -> Tensor:
    """Token ids with EOS (and anything after it) replaced by PAD: the symbols BLEU scores."""
    ended = (tokens == EOS).cumsum(-1) > 0
    return tokens.masked_fill(ended | (tokens == BOS), PAD)


def decode(model: Seq2Seq, src: Tensor, vocab: Vocab, max_len: int, chunk: int = 1024
           ) -> list[list[str]]:
    """The greedy output of `model` for every source row, as target symbols."""
    was_training = model.training
    model.eval()
    out: list[list[str]] = []
    for i in range(0, len(src), chunk):
        toks = model.generate(src[i:i + chunk], max_len)
        out += [vocab.decode(row) for row in toks[:, 0].tolist()]
    model.train(was_training)
    return out


def _step(model: Seq2Seq, opt: torch.optim.Optimizer, loss: Tensor) -> None:
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def pretrain(train: dict[str, Tensor], src_size: int, tgt_size: int, budget: Budget,
             seed: int) -> Seq2Seq:
    """A network trained from a seeded initialisation with token cross-entropy."""
    torch.manual_seed(seed)
    model = Seq2Seq(src_size, tgt_size, budget.emb, budget.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=budget.pretrain_lr)
    for idx in batches(len(train["src"]), budget.batch, budget.pretrain_steps, seed):
        loss, _ = token_ce(model, *_trim(train["src"][idx], train["tgt"][idx]))
        _step(model, opt, loss)
    return model


def finetune(model: Seq2Seq, train: dict[str, Tensor], variant: str, cfg: dict[str, float],
             budget: Budget, seed: int) -> Seq2Seq:
    """Fine-tune a copy of `model` for `budget.finetune_steps` steps with one variant:
    token cross-entropy, or `(1 - w) * cross-entropy + w * BLEU loss` (`cfg["weight"]`)."""
    import softmetrics

    model = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    w = cfg.get("weight", 0.0)
    # candidates scored per token (fairseq's sequence_risk criterion does the same): the
    # weights then spread over the candidates instead of sitting on the likeliest one
    expected = (softmetrics.ExpectedBLEULoss(length_normalize=True)
                if variant == "expected_bleu" else None)
    soft = softmetrics.SoftBLEULoss() if variant == "soft_bleu" else None
    g = torch.Generator().manual_seed(90_000 + seed)
    for idx in batches(len(train["src"]), budget.batch, budget.finetune_steps, seed + 1):
        src, tgt = _trim(train["src"][idx], train["tgt"][idx])
        ce, logits = token_ce(model, src, tgt)
        loss = ce
        ref = symbols_only(tgt)
        if expected is not None:
            # K sampled outputs per source, then their log-probabilities with gradient
            cand = model.generate(src, tgt.shape[1] + 2, sample=budget.samples, generator=g)
            logp = model.sequence_log_probs(src, cand)
            loss = (1 - w) * ce + w * expected(symbols_only(cand), logp, ref)
        elif soft is not None:
            # teacher-forced distributions at the reference's positions
            lengths = (ref != PAD).sum(-1)
            loss = (1 - w) * ce + w * soft(logits, ref, hyp_lengths=lengths)
        _step(model, opt, loss)
    return model


def mixing_configurations(n: int, variant: str) -> list[dict[str, Any]]:
    """The variant's `n` (learning rate, w) configurations: `_common.configurations`, the
    same learning rates for every variant, the weight mapped from (0.1, 3) into (0, 1)."""
    from _common import configurations

    configs: list[dict[str, Any]] = configurations(n, None if variant == "ce" else "weight")
    for c in configs:
        if "weight" in c:
            c["weight"] = c["weight"] / (1 + c["weight"])
    return configs
