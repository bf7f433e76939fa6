"""The sequence task of `compare_ce.py --full`: number words, German to English.

Data come from `num2words` (nothing downloaded): each integer below 1 000 000 gives a source
sentence, its German words as characters ("fünfundvierzigtausend..."), and a target
sentence, its English words ("forty five thousand ..."; commas dropped, hyphens split).
Integers are split per seed into disjoint train / validation / test sets.

Model: a character GRU encoder (bidirectional) and a word GRU decoder with dot-product
attention. Every variant starts from the same network pretrained with token
cross-entropy, then is fine-tuned for the same number of steps with

- (a) token cross-entropy only,
- (b) `(1 - w) * cross-entropy + w * ExpectedBLEULoss` on sampled candidates (minimum risk
  training, Shen et al. 2016; Edunov et al. 2018),
- (c) `(1 - w) * cross-entropy + w * SoftBLEULoss` on the teacher-forced distributions,

each with the same budget of (learning rate, w) configurations chosen by validation BLEU.
Test BLEU is sacrebleu's corpus BLEU of the greedy translations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _common import Progress, configurations, paired
from torch import Tensor, nn

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ["<pad>", "<bos>", "<eos>"]
LIMIT = 1_000_000

VARIANTS = {
    "ce": ("(a) cross-entropy", None),
    "expected_bleu": ("(b) CE + w·ExpectedBLEU", "ExpectedBLEULoss"),
    "soft_bleu": ("(c) CE + w·SoftBLEU", "SoftBLEULoss"),
}


@dataclass
class SeqSettings:
    # A small training set keeps the task off the ceiling: with tens of times more
    # sentences the pretrained network is already near 100 test BLEU.
    train: int = 300
    val: int = 200
    test: int = 1_000
    pretrain_steps: int = 400
    finetune_steps: int = 200
    batch: int = 64
    samples: int = 4  # candidates per source for expected BLEU
    configs: int = 2
    emb: int = 64
    hidden: int = 64
    seeds: int | None = 5  # the run's first seeds (None: all of them)

    @classmethod
    def smoke(cls) -> SeqSettings:
        return cls(train=64, val=32, test=32, pretrain_steps=3, finetune_steps=2, batch=16,
                   samples=2, configs=2, emb=8, hidden=16, seeds=None)


def check_available() -> None:
    """Fail before any training when a dependency or a BLEU loss is missing."""
    try:
        import num2words  # noqa: F401
        import sacrebleu  # noqa: F401
    except ImportError as err:
        raise SystemExit(f"compare_ce: the sequence task needs {err.name}: "
                         f"pip install -e \".[bench]\"") from err
    import softmetrics

    for _, name in VARIANTS.values():
        if name is not None and not hasattr(softmetrics, name):
            raise SystemExit(f"compare_ce: the sequence task needs softmetrics.{name}, which "
                             f"this softmetrics does not have; run without --sequence/--full")


# ---------------------------------------------------------------------------------------
# data


def english(n: int) -> list[str]:
    from num2words import num2words

    return num2words(n, lang="en").replace(",", "").replace("-", " ").split()


def german(n: int) -> str:
    from num2words import num2words

    return num2words(n, lang="de")


class Vocab:
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


def _pad(rows: list[list[int]]) -> Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.long)


def make_data(seed: int, cfg: SeqSettings) -> dict[str, Any]:
    """Disjoint integer sets per seed and their padded source/target tensors."""
    rng = np.random.default_rng(50_000 + seed)
    numbers = rng.choice(LIMIT, size=cfg.train + cfg.val + cfg.test, replace=False)
    parts = {"train": numbers[:cfg.train], "val": numbers[cfg.train:cfg.train + cfg.val],
             "test": numbers[cfg.train + cfg.val:]}
    # the vocabularies are the task's alphabet, not a statistic of the split
    alphabet = [*range(102), 1000, LIMIT]
    src_vocab = Vocab(sorted({c for n in alphabet for c in german(n)}))
    tgt_vocab = Vocab(sorted({w for n in alphabet for w in english(n)}))
    out: dict[str, Any] = {"src_vocab": src_vocab, "tgt_vocab": tgt_vocab}
    for name, nums in parts.items():
        src = [src_vocab.encode(german(int(n))) for n in nums]
        tgt_words = [english(int(n)) for n in nums]
        out[name] = {"src": _pad(src), "tgt": _pad([tgt_vocab.encode(w) for w in tgt_words]),
                     "ref": [" ".join(w) for w in tgt_words]}
    return out


# ---------------------------------------------------------------------------------------
# model


class Translator(nn.Module):
    """Bidirectional character GRU encoder, word GRU decoder with dot-product attention."""

    def __init__(self, src_size: int, tgt_size: int, emb: int, hidden: int) -> None:
        super().__init__()
        self.src_emb = nn.Embedding(src_size, emb, padding_idx=PAD)
        self.encoder = nn.GRU(emb, hidden // 2, batch_first=True, bidirectional=True)
        self.tgt_emb = nn.Embedding(tgt_size, emb, padding_idx=PAD)
        self.decoder = nn.GRUCell(emb + hidden, hidden)
        self.query = nn.Linear(hidden, hidden, bias=False)
        self.out = nn.Linear(2 * hidden, tgt_size)

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        memory, last = self.encoder(self.src_emb(src))
        state = torch.cat([last[0], last[1]], dim=-1)
        return memory, src != PAD, state

    def step(self, token: Tensor, state: Tensor, context: Tensor, memory: Tensor,
             mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        state = self.decoder(torch.cat([self.tgt_emb(token), context], dim=-1), state)
        scores = torch.einsum("bh,bth->bt", self.query(state), memory)
        attn = torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)
        context = torch.einsum("bt,bth->bh", attn, memory)
        return self.out(torch.cat([state, context], dim=-1)), state, context

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        """Teacher-forced logits (B, T, V) for the target `tgt` (B, T) (ends with EOS)."""
        memory, mask, state = self.encode(src)
        context = memory.new_zeros(memory.shape[0], memory.shape[-1])
        token = torch.full_like(tgt[:, 0], BOS)
        logits = []
        for t in range(tgt.shape[1]):
            z, state, context = self.step(token, state, context, memory, mask)
            logits.append(z)
            token = tgt[:, t]
        return torch.stack(logits, dim=1)

    def generate(self, src: Tensor, max_len: int, *, sample: int = 0,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Greedy (`sample=0`) or `sample` sampled continuations per source.

        Returns tokens (B, K, T) padded after EOS and their sequence log-probabilities
        (B, K) (with gradient when sampling under autograd).
        """
        memory, mask, state = self.encode(src)
        k = max(1, sample)
        if k > 1:
            memory = memory.repeat_interleave(k, 0)
            mask = mask.repeat_interleave(k, 0)
            state = state.repeat_interleave(k, 0)
        b = memory.shape[0]
        context = memory.new_zeros(b, memory.shape[-1])
        token = torch.full((b,), BOS, dtype=torch.long)
        done = torch.zeros(b, dtype=torch.bool)
        tokens, logp = [], memory.new_zeros(b)
        for _ in range(max_len):
            z, state, context = self.step(token, state, context, memory, mask)
            lp = torch.log_softmax(z, dim=-1)
            if sample:
                token = torch.multinomial(lp.exp().detach(), 1, generator=generator).squeeze(1)
            else:
                token = lp.argmax(-1)
            token = torch.where(done, torch.full_like(token, PAD), token)
            logp = logp + torch.where(done, 0.0, lp.gather(1, token.clamp_min(0)[:, None])[:, 0])
            tokens.append(token)
            done = done | (token == EOS)
        out = torch.stack(tokens, dim=1).view(-1, k, max_len)
        return out, logp.view(-1, k)


# ---------------------------------------------------------------------------------------
# training and evaluation


def token_ce(model: Translator, src: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
    logits = model(src, tgt)
    return F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=PAD), logits


def bleu(model: Translator, part: dict[str, Any], vocab: Vocab, max_len: int) -> float:
    import sacrebleu

    model.eval()
    hyps = []
    with torch.no_grad():
        for i in range(0, len(part["src"]), 512):
            toks, _ = model.generate(part["src"][i:i + 512], max_len)
            hyps += [" ".join(vocab.decode(row.tolist())) for row in toks[:, 0]]
    model.train()
    return float(sacrebleu.corpus_bleu(hyps, [part["ref"]]).score)


def _batches(n: int, batch: int, steps: int, seed: int) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    out: list[Tensor] = []
    while len(out) < steps:
        perm = torch.randperm(n, generator=g)
        out += [perm[i:i + batch] for i in range(0, n - batch + 1, batch)]
    return out[:steps]


def _words_only(tokens: Tensor) -> Tensor:
    """Token ids with EOS (and anything after it) replaced by PAD: the words BLEU scores."""
    ended = (tokens == EOS).cumsum(-1) > 0
    return tokens.masked_fill(ended | (tokens == BOS), PAD)


def finetune(model: Translator, data: dict[str, Any], variant: str, cfg: dict[str, float],
             settings: SeqSettings, seed: int) -> Translator:
    """Fine-tune a copy of `model` for `settings.finetune_steps` steps with one variant:
    token cross-entropy, or `(1 - w) * cross-entropy + w * BLEU loss`."""
    import copy

    import softmetrics

    model = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    train = data["train"]
    max_len = train["tgt"].shape[1]
    w = cfg.get("weight", 0.0)
    expected = softmetrics.ExpectedBLEULoss() if variant == "expected_bleu" else None
    soft = softmetrics.SoftBLEULoss() if variant == "soft_bleu" else None
    g = torch.Generator().manual_seed(90_000 + seed)
    for idx in _batches(len(train["src"]), settings.batch, settings.finetune_steps, seed + 1):
        src, tgt = train["src"][idx], train["tgt"][idx]
        ce, logits = token_ce(model, src, tgt)
        loss = ce
        ref = _words_only(tgt)
        if expected is not None:
            # K sampled translations per source and their sequence log-probabilities
            cand, logp = model.generate(src, max_len, sample=settings.samples, generator=g)
            loss = (1 - w) * ce + w * expected(_words_only(cand), logp, ref)
        elif soft is not None:
            # teacher-forced distributions at the reference's word positions
            lengths = (ref != PAD).sum(-1)
            loss = (1 - w) * ce + w * soft(logits, ref, hyp_lengths=lengths)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model


def pretrain(data: dict[str, Any], settings: SeqSettings, seed: int) -> Translator:
    torch.manual_seed(seed)
    model = Translator(len(data["src_vocab"]), len(data["tgt_vocab"]), settings.emb,
                       settings.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    train = data["train"]
    for idx in _batches(len(train["src"]), settings.batch, settings.pretrain_steps, seed):
        loss, _ = token_ce(model, train["src"][idx], train["tgt"][idx])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model


def run(settings: Any, *, resamples: int) -> dict[str, Any]:
    """The sequence task over the run's (first) seeds; test BLEU per seed and variant."""
    from importlib.metadata import version

    cfg = SeqSettings.smoke() if settings.sequence_settings.get("smoke") else SeqSettings()
    seeds = settings.seeds if cfg.seeds is None else settings.seeds[:cfg.seeds]
    variants: dict[str, Any] = {k: {"label": v[0], "bleu": [], "val_bleu": [], "chosen": []}
                                for k, v in VARIANTS.items()}
    pre_bleu = []
    t0 = time.perf_counter()
    tasks = len(seeds) * (1 + len(VARIANTS) * cfg.configs)
    with Progress(tasks, "sequence") as progress:
        for seed in seeds:
            data = make_data(seed, cfg)
            max_len = data["test"]["tgt"].shape[1] + 2
            with progress.task(f"seed {seed}: pretraining"):
                base = pretrain(data, cfg, seed)
                pre_bleu.append(bleu(base, data["test"], data["tgt_vocab"], max_len))
            for key in VARIANTS:
                configs = configurations(cfg.configs, None if key == "ce" else "weight")
                for c in configs:  # the mixing weight w: mapped from (0.1, 3) into (0, 1)
                    if "weight" in c:
                        c["weight"] = c["weight"] / (1 + c["weight"])
                models = []
                for i, c in enumerate(configs):
                    with progress.task(f"seed {seed}: {VARIANTS[key][0]}, configuration "
                                       f"{i + 1}/{len(configs)}"):
                        models.append(finetune(base, data, key, c, cfg, seed))
                vals = [bleu(m, data["val"], data["tgt_vocab"], max_len) for m in models]
                best = int(np.argmax(vals))
                variants[key]["val_bleu"].append(vals)
                variants[key]["chosen"].append(configs[best])
                variants[key]["bleu"].append(bleu(models[best], data["test"],
                                                  data["tgt_vocab"], max_len))
    comparisons = {k: paired(v["bleu"], variants["ce"]["bleu"], resamples=resamples)
                   for k, v in variants.items() if k != "ce"}
    pre_mean = float(np.mean(pre_bleu))
    description = (
        f"Integers below {LIMIT:,}: German number words as characters -> English number "
        f"words; {cfg.train} / {cfg.val} / {cfg.test} train / validation / test sentences "
        f"per seed, {len(seeds)} seeds. A GRU encoder-decoder with attention ({cfg.hidden} "
        f"units) is pretrained for {cfg.pretrain_steps} steps of batch {cfg.batch} with "
        f"token cross-entropy (mean test BLEU {pre_mean:.2f}), then fine-tuned for "
        f"{cfg.finetune_steps} steps per variant, with {cfg.configs} (learning rate, w) "
        f"configurations each chosen on validation BLEU; expected BLEU uses {cfg.samples} "
        f"sampled candidates per source."
    )
    return {"settings": cfg.__dict__, "seeds": list(seeds), "pretrained_bleu": pre_bleu,
            "variants": variants, "comparisons": comparisons, "description": description,
            "sacrebleu": version("sacrebleu"), "num2words": version("num2words"),
            "seconds": time.perf_counter() - t0}
