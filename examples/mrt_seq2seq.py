"""Minimum risk training (expected BLEU) of a small GRU sequence-to-sequence model.

A toy translation task (nothing is downloaded): the source is 3 to 10 tokens, the target
is the source reversed. A GRU encoder-decoder with attention is pretrained briefly with
token cross-entropy, then fine-tuned with minimum risk training (Shen et al., 2016):
per source, K candidates are *sampled from the model itself*, scored with exact sentence
BLEU, and `ExpectedBLEULoss` raises the sequence log-probabilities of the candidates
better than the expectation and lowers the others; as Edunov et al. (2018) recommend, the
risk is mixed with token cross-entropy. The same number of cross-entropy-only steps from
the same checkpoint is run for comparison. Corpus BLEU of greedy translations of held-out
sources (`bleu_score`, exact) is printed after each stage.

Token conventions, explicit everywhere below:

- ids: PAD = 0, BOS = 1 (starts the decoder input, never predicted), EOS = 2 (ends every
  target and every candidate), content tokens from 3;
- a target row is `y_1 ... y_n EOS PAD ...`; the decoder reads it shifted right,
  `BOS y_1 ... y_n`, so the logits at position t predict target position t;
- BLEU compares words only: EOS, and everything after it, becomes PAD (the pad_id at
  which `bleu_score` ends a sentence), in the references and in the candidates alike.

    python examples/mrt_seq2seq.py          # under a minute on a CPU
    python examples/mrt_seq2seq.py --tiny   # a few steps, to check that it runs
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from softmetrics import ExpectedBLEULoss
from softmetrics.functional import bleu_score

# --8<-- [start:tokens]
PAD, BOS, EOS = 0, 1, 2


def shift_right(tgt: Tensor) -> Tensor:
    """The decoder input for a target row: BOS, then the target without its last position."""
    return torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], dim=1)


def words_only(tokens: Tensor) -> Tensor:
    """Ids as BLEU should see them: EOS and everything after it replaced by PAD."""
    ended = (tokens == EOS).cumsum(-1) > 0
    return tokens.masked_fill(ended, PAD)
# --8<-- [end:tokens]


WORDS = 12  # content tokens 3 .. 14
VOCAB = 3 + WORDS
MIN_LEN, MAX_LEN = 3, 10


def make_pairs(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Sources `(n, MAX_LEN)` (words, then PAD) and targets `(n, MAX_LEN + 1)` (the words
    reversed, EOS, then PAD)."""
    lengths = torch.randint(MIN_LEN, MAX_LEN + 1, (n, 1), generator=generator)
    words = torch.randint(3, VOCAB, (n, MAX_LEN), generator=generator)
    pos = torch.arange(MAX_LEN + 1)
    src = torch.where(pos[:MAX_LEN] < lengths, words, PAD)
    # target position t holds source position length - 1 - t
    rev = (lengths - 1 - pos).clamp(0, MAX_LEN - 1)
    tgt = torch.where(pos < lengths, words.gather(1, rev), PAD)
    return src, tgt.masked_fill(pos == lengths, EOS)


class Seq2Seq(nn.Module):
    """Bidirectional GRU encoder; GRU decoder with dot-product attention on its output."""

    def __init__(self, emb: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, emb, padding_idx=PAD)
        self.encoder = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden, hidden)
        self.decoder = nn.GRU(emb, hidden, batch_first=True)
        self.key = nn.Linear(2 * hidden, hidden, bias=False)
        self.out = nn.Linear(3 * hidden, VOCAB)
        # never predicted: PAD (positions after EOS are filled in, not generated) and BOS
        self.register_buffer("never", torch.isin(torch.arange(VOCAB), torch.tensor([PAD, BOS])))

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        memory, _ = self.encoder(self.embed(src))               # (B, S, 2H)
        mask = src != PAD
        mean = (memory * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return memory, mask, torch.tanh(self.bridge(mean))[None]  # state (1, B, H)

    def decode(self, inputs: Tensor, memory: Tensor, mask: Tensor,
               state: Tensor) -> tuple[Tensor, Tensor]:
        """Logits `(B, T, V)` of the token after each decoder input `(B, T)`, and the
        state after the last one (so that sampling can go on one token at a time)."""
        out, state = self.decoder(self.embed(inputs), state)    # (B, T, H)
        scores = torch.einsum("bth,bsh->bts", out, self.key(memory))
        attn = scores.masked_fill(~mask[:, None], float("-inf")).softmax(-1)
        context = torch.einsum("bts,bsd->btd", attn, memory)
        logits = self.out(torch.cat([out, context], dim=-1))
        return logits.masked_fill(self.never, float("-inf")), state

    def forward(self, src: Tensor, decoder_input: Tensor) -> Tensor:
        """Teacher-forced logits `(B, T, V)`."""
        memory, mask, state = self.encode(src)
        return self.decode(decoder_input, memory, mask, state)[0]


# --8<-- [start:mrt]
def token_cross_entropy(model: Seq2Seq, src: Tensor, tgt: Tensor) -> Tensor:
    """Teacher forcing: the decoder reads `BOS y_1 ... y_n` and predicts `y_1 ... y_n EOS`."""
    logits = model(src, shift_right(tgt))
    return F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=PAD)


@torch.no_grad()
def generate(model: Seq2Seq, src: Tensor, max_len: int, k: int = 1, *, sample: bool = True,
             generator: torch.Generator | None = None) -> Tensor:
    """`k` candidates per source `(B, k, max_len)`: sampled from the model (or greedy with
    `sample=False`) one token at a time, each ending with EOS, PAD after it. A candidate
    that reaches `max_len` without EOS is cut there."""
    memory, mask, state = model.encode(src)
    memory, mask = memory.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
    state = state.repeat_interleave(k, 1)
    token = torch.full((memory.shape[0], 1), BOS, device=src.device)
    done = torch.zeros(memory.shape[0], 1, dtype=torch.bool, device=src.device)
    out = []
    for _ in range(max_len):  # no early exit: it would read `done` on the host
        logits, state = model.decode(token, memory, mask, state)
        probs = logits[:, -1].softmax(-1)
        token = (torch.multinomial(probs, 1, generator=generator) if sample
                 else probs.argmax(-1, keepdim=True))
        token = token.masked_fill(done, PAD)  # a finished candidate only pads
        out.append(token)
        done = done | (token == EOS)
    return torch.cat(out, dim=1).view(src.shape[0], k, max_len)


def sequence_log_probs(model: Seq2Seq, src: Tensor, candidates: Tensor) -> Tensor:
    """log p(candidate | source) `(B, K)`, with gradient: one teacher-forced pass over the
    candidates (shifted right, as for cross-entropy), summing the log-probabilities of
    their tokens up to and including EOS; PAD after EOS adds nothing."""
    b, k, t = candidates.shape
    flat = candidates.reshape(b * k, t)
    logits = model(src.repeat_interleave(k, 0), shift_right(flat))
    real = flat != PAD
    token_lp = logits.log_softmax(-1).gather(-1, flat.masked_fill(~real, EOS)[..., None])
    return torch.where(real, token_lp[..., 0], 0.0).sum(-1).view(b, k)


def mrt_loss(model: Seq2Seq, risk_fn: ExpectedBLEULoss, src: Tensor, tgt: Tensor, *,
             k: int, mix: float, generator: torch.Generator | None = None) -> Tensor:
    """`(1 - mix) * risk + mix * token cross-entropy` for one batch of sources `(B, S)` and
    targets `(B, T)` (words, EOS, PAD)."""
    candidates = generate(model, src, tgt.shape[1] + 2, k, generator=generator)
    log_probs = sequence_log_probs(model, src, candidates)     # (B, K), with gradient
    risk = risk_fn(words_only(candidates), log_probs, words_only(tgt))  # 1 - E[BLEU]
    return (1 - mix) * risk + mix * token_cross_entropy(model, src, tgt)
# --8<-- [end:mrt]


def corpus_bleu(model: Seq2Seq, src: Tensor, tgt: Tensor) -> float:
    model.eval()
    hyp = generate(model, src, tgt.shape[1] + 2, sample=False)[:, 0]
    model.train()
    return float(bleu_score(words_only(hyp), words_only(tgt), corpus=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few steps on a few sentences")
    parser.add_argument("--pretrain-steps", type=int, default=None)
    parser.add_argument("--mrt-steps", type=int, default=None)
    parser.add_argument("--samples", type=int, default=8, help="candidates per source (K)")
    parser.add_argument("--mix", type=float, default=0.3, help="weight of cross-entropy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pretrain_steps = (3 if args.tiny else 100) if args.pretrain_steps is None \
        else args.pretrain_steps
    mrt_steps = (2 if args.tiny else 100) if args.mrt_steps is None else args.mrt_steps
    batch, n_test = (8, 16) if args.tiny else (32, 500)

    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    src_test, tgt_test = make_pairs(n_test, g)
    model = Seq2Seq()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(pretrain_steps):
        src, tgt = make_pairs(batch, g)
        loss = token_cross_entropy(model, src, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"cross-entropy pretraining, {pretrain_steps} steps: test BLEU "
          f"{corpus_bleu(model, src_test, tgt_test):.4f}")
    pretrained = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())

    # --8<-- [start:risk]
    # risk = 1 - expected sentence BLEU of the K candidates under q = softmax(alpha log p);
    # all ids are below VOCAB, which lets BLEU count n-grams without reading the data
    risk_fn = ExpectedBLEULoss(alpha=1.0, vocab_size=VOCAB, validate_args=False)
    # --8<-- [end:risk]

    def mrt_step(src: Tensor, tgt: Tensor) -> Tensor:
        return mrt_loss(model, risk_fn, src, tgt, k=args.samples, mix=args.mix, generator=g)

    def ce_step(src: Tensor, tgt: Tensor) -> Tensor:
        return token_cross_entropy(model, src, tgt)

    for name, step in [("minimum risk training", mrt_step), ("cross-entropy only", ce_step)]:
        model.load_state_dict(pretrained[0])
        opt.load_state_dict(pretrained[1])
        stream = torch.Generator().manual_seed(args.seed + 1)  # the same batches for both
        for _ in range(mrt_steps):
            loss = step(*make_pairs(batch, stream))
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"then {mrt_steps} steps of {name}: test BLEU "
              f"{corpus_bleu(model, src_test, tgt_test):.4f}")


if __name__ == "__main__":
    main()
