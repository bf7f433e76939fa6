"""Throughput of sentence BLEU on token ids: softmetrics vs sacrebleu, NLTK and torchmetrics.

Minimum risk training needs one sentence BLEU per sampled candidate, thousands per step.
The usual way is a Python loop over sacrebleu or NLTK on the CPU; `bleu_score` computes all
of them in one batched call. Hypotheses and references are random ids (vocabulary 1000,
references share about 70% of the hypothesis tokens so that n-grams match), `B` sentences
of `length` tokens. The Python-loop references are timed on the first `--loop-sentences`
sentences (their cost is linear in the number of sentences) on pre-built strings or token
lists, so their rates exclude the conversion from ids; softmetrics is timed on the whole
batch. Every timing is the median of `torch.utils.benchmark.Timer.blocked_autorange`, all in
one process; the load average of the machine is recorded with the results.

The device rows come first (`--device`, CUDA by default when present): for each length, a
check that `bleu_score` on the device equals sacrebleu on a sample of `--check-sentences`
sentences, then the throughput of batches of `--gpu-batches` sentences; the CPU rows
follow. The results are rewritten after every row, so a run that is stopped keeps what it
measured, and `--budget-s` stops it cleanly before the next row.

    python benchmarks/bleu.py              # B = 4096, lengths 32 and 128 (CUDA too if present)
    python benchmarks/bleu.py --record     # the docs' record, docs/benchmarks/
    python benchmarks/bleu.py --smoke      # tiny sizes; checks the script
    python benchmarks/bleu.py --device cuda --gpu-batches 16384 4096 65536 --budget-s 50

Writes `bleu.json` (the record: command, commit, date, machine and load, every row),
`bleu_table.md` and `bleu.png` to `results/` (ignored by git) or `--out DIR`; `--record`
writes them to `docs/benchmarks/`, where the Text page includes them.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.benchmark import Timer

from softmetrics.functional import bleu_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    add_output_arguments,
    command_line,
    finish_record,
    output_dir,
    provenance_line,
    refuse_smoke_record,
    run_record,
    wrote,
)
from _machine import Budget, machine, write_atomic

VOCAB = 1000


def make_batch(batch: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random hypotheses (ids 1..999) and references sharing ~70% of their tokens."""
    g = torch.Generator().manual_seed(seed)
    hyp = torch.randint(1, VOCAB, (batch, length), generator=g)
    noise = torch.randint(1, VOCAB, (batch, length), generator=g)
    ref = torch.where(torch.rand(batch, length, generator=g) < 0.3, noise, hyp)
    return hyp, ref


def median_and_iqr(stmt: str, env: dict, min_run_time: float, cpu_time: bool = True
                   ) -> tuple[float, float, float | None]:
    """Wall-clock median and IQR (blocked_autorange), and the median CPU time per call
    (None without `cpu_time`, for work done on another device).

    The CPU time (`time.process_time`, all threads of this process) does not count the time
    spent waiting for a core, so it stays meaningful on a busy machine; for the
    multi-threaded softmetrics rows it adds up the threads.
    """
    m = Timer(stmt, globals=env).blocked_autorange(min_run_time=min_run_time)
    if not cpu_time:
        return m.median, m.iqr, None
    code = compile(stmt, "<bench>", "eval")
    cpu = []
    end = time.perf_counter() + max(min_run_time / 2, 0.005)
    while time.perf_counter() < end or len(cpu) < 3:
        start = time.process_time()
        eval(code, env)
        cpu.append(time.process_time() - start)
    return m.median, m.iqr, statistics.median(cpu)


def loop_methods(hyp: torch.Tensor, ref: torch.Tensor) -> dict:
    """Per-sentence Python loops of the reference implementations (those installed)."""
    h_words = [" ".join(map(str, row)) for row in hyp.tolist()]
    r_words = [" ".join(map(str, row)) for row in ref.tolist()]
    methods = {}
    try:
        from sacrebleu.metrics import BLEU

        logging.getLogger("sacrebleu").setLevel(logging.ERROR)
        metric = BLEU(tokenize="none", effective_order=True)

        def run_sacrebleu():
            return [metric.sentence_score(h, [r]).score / 100
                    for h, r in zip(h_words, r_words, strict=True)]

        methods["sacrebleu"] = run_sacrebleu

        from sacrebleu import sentence_bleu as sacrebleu_sentence_bleu

        # the convenience function builds a new BLEU object per call; with sacrebleu's
        # default tokenizer (13a) it also tokenizes each sentence
        def run_sentence_bleu(tokenize: str):
            return lambda: [sacrebleu_sentence_bleu(h, [r], tokenize=tokenize).score / 100
                            for h, r in zip(h_words, r_words, strict=True)]

        methods["sacrebleu.sentence_bleu (tokenize none)"] = run_sentence_bleu("none")
        methods["sacrebleu.sentence_bleu (tokenize 13a)"] = run_sentence_bleu("13a")
    except ImportError:
        pass
    try:
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

        smoothing = SmoothingFunction().method3  # NIST geometric smoothing, like "exp"
        h_tok = [s.split() for s in h_words]
        r_tok = [[s.split()] for s in r_words]

        def run_nltk():
            return [sentence_bleu(r, h, smoothing_function=smoothing)
                    for h, r in zip(h_tok, r_tok, strict=True)]

        methods["nltk"] = run_nltk
    except ImportError:
        pass
    try:
        from torchmetrics.functional.text import bleu_score as tm_bleu

        def run_torchmetrics():
            return [tm_bleu([h], [[r]]) for h, r in zip(h_words, r_words, strict=True)]

        methods["torchmetrics"] = run_torchmetrics
    except ImportError:
        pass
    return methods


def _sacrebleu_sentences(hyp: torch.Tensor, ref: torch.Tensor) -> torch.Tensor | None:
    """sacrebleu's sentence BLEU / 100 of each row (None when sacrebleu is missing)."""
    loops = loop_methods(hyp, ref)
    if "sacrebleu" not in loops:
        return None
    return torch.tensor(loops["sacrebleu"](), dtype=torch.float64)


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def device_rows(result: dict, device: torch.device, batches: list[int], lengths: list[int],
                check_sentences: int, min_run_time: float, budget: Budget, save) -> None:
    """For each length: `bleu_score` on `device` against sacrebleu on a sample of the first
    batch, then the throughput of each batch size (one call, every sentence's BLEU)."""
    rows, checks = result["rows"], result["max_abs_diff_vs_sacrebleu"]
    kw = dict(vocab_size=VOCAB, validate_args=False)
    name = _device_name(device)
    for length in lengths:
        for b in batches:
            if budget.spent():
                budget.stop(f"{name} B={b} length={length}")
                return
            hyp, ref = (x.to(device) for x in make_batch(b, length))
            k = min(check_sentences, b)
            key = f"{name} length {length}"
            if k and key not in checks:
                theirs = _sacrebleu_sentences(hyp[:k].cpu(), ref[:k].cpu())
                if theirs is not None:
                    # the timed options, and the defaults (validation, bound from the data)
                    checks[key] = max(
                        float((bleu_score(hyp[:k], ref[:k], **opts).cpu() - theirs).abs().max())
                        for opts in (kw, dict()))
                    print(f"{key}: max |softmetrics - sacrebleu| over {k} sentences = "
                          f"{checks[key]:.2e}", flush=True)
            env = {"f": bleu_score, "hyp": hyp, "ref": ref, "kw": kw, "torch": torch}
            stmt = "f(hyp, ref, **kw)"
            if device.type == "cuda":
                stmt += "; torch.cuda.synchronize()"
            exec(stmt, env)  # warm-up
            t, iqr, _ = median_and_iqr(stmt, env, min_run_time, cpu_time=False)
            rows.append(dict(part="device", device=name, batch=b, full_batch=b, length=length,
                             method="softmetrics", median_s=t, iqr_s=iqr,
                             sentences_per_s=b / t, cpu_s=None, sentences_per_cpu_s=None))
            print(f"{name} B={b} length={length}: {b / t:,.0f} sentences/s", flush=True)
            save()
            del hyp, ref, env


def cpu_rows(result: dict, batch: int, lengths: list[int], loop_sentences: int,
             min_run_time: float, budget: Budget, save) -> None:
    """The Python loops of the references on `loop_sentences` sentences, and softmetrics
    on the whole batch, on the CPU."""
    rows, checks = result["rows"], result["max_abs_diff_vs_sacrebleu"]
    threads = torch.get_num_threads()
    variants = {
        "softmetrics": dict(vocab_size=VOCAB, validate_args=False),
        "softmetrics (validate_args=True)": dict(),
        "softmetrics (no vocab_size, no validation)": dict(validate_args=False),
        "softmetrics (1 thread)": dict(vocab_size=VOCAB, validate_args=False),
    }
    for length in lengths:
        hyp, ref = make_batch(batch, length)
        n_loop = min(loop_sentences, batch)
        loops = loop_methods(hyp[:n_loop], ref[:n_loop])
        if "sacrebleu" in loops:
            ours = bleu_score(hyp[:n_loop], ref[:n_loop])
            theirs = torch.tensor(loops["sacrebleu"](), dtype=torch.float64)
            checks[str(length)] = float((ours - theirs).abs().max())
        todo = [(name, fn, None) for name, fn in loops.items()]
        todo += [(name, None, kw) for name, kw in variants.items()]
        for name, fn, kw in todo:
            if budget.spent():
                budget.stop(f"cpu {name} length={length}")
                return
            if fn is not None:
                t, iqr, cpu = median_and_iqr("fn()", {"fn": fn}, min_run_time)
                n = n_loop
            else:
                env = {"f": bleu_score, "hyp": hyp, "ref": ref, "kw": kw}
                torch.set_num_threads(1 if name.endswith("(1 thread)") else threads)
                try:
                    t, iqr, cpu = median_and_iqr("f(hyp, ref, **kw)", env, min_run_time)
                finally:
                    torch.set_num_threads(threads)
                n = batch
            rows.append(dict(part="cpu", device="cpu", batch=n, full_batch=batch,
                             length=length, method=name, median_s=t, iqr_s=iqr,
                             sentences_per_s=n / t, cpu_s=cpu, sentences_per_cpu_s=n / cpu))
            save()


def add_ratios(result: dict) -> None:
    """`x_sacrebleu`: each row's rate over sacrebleu's at the same length (CPU loop)."""
    rows = result["rows"]
    base = {r["length"]: r["sentences_per_s"] for r in rows if r["method"] == "sacrebleu"}
    for r in rows:
        r["x_sacrebleu"] = (r["sentences_per_s"] / base[r["length"]] if r["length"] in base
                            else None)


def _single_threaded(row: dict) -> bool:
    return row.get("part", "cpu") == "cpu" and row["device"] == "cpu" and (
        row["batch"] != row.get("full_batch") or row["method"].endswith("(1 thread)"))


def table(result: dict) -> str:
    """Markdown: wall-clock rates for every row; CPU-time rates for single-threaded rows
    (for multi-threaded rows the CPU time also counts threads spinning for work)."""
    head = []
    if result.get("run"):
        head = [provenance_line(result["run"], result["machine"], result["run"]["seconds"])
                + ".", ""]
    lines = [*head, "| device | B | length | method | sentences/s (wall) | x sacrebleu | "
             "sentences per CPU-second | x sacrebleu (CPU) |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    base = {r["length"]: r["sentences_per_cpu_s"] for r in result["rows"]
            if r["method"] == "sacrebleu"}
    for r in result["rows"]:
        ratio = f"{r['x_sacrebleu']:.1f}" if r["x_sacrebleu"] is not None else "-"
        per_cpu, cpu_ratio = "-", "-"
        if r["sentences_per_cpu_s"] and _single_threaded(r):
            per_cpu = f"{r['sentences_per_cpu_s']:,.0f}"
            if r["length"] in base:
                cpu_ratio = f"{r['sentences_per_cpu_s'] / base[r['length']]:.1f}"
        lines.append(f"| {r['device']} | {r['batch']} | {r['length']} | {r['method']} | "
                     f"{r['sentences_per_s']:,.0f} | {ratio} | {per_cpu} | {cpu_ratio} |")
    if result.get("stopped"):
        lines += ["", result["stopped"]]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    """Two log-scale bar charts: wall-clock rates, and CPU-time rates of one thread."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [r for r in result["rows"] if r["device"] == "cpu" and r.get("part") != "device"]
    if not rows:
        return
    lengths = sorted({r["length"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = [("sentences_per_s", "sentences / s (wall clock)", rows),
              ("sentences_per_cpu_s", "sentences per CPU-second (one thread)",
               [r for r in rows if _single_threaded(r)])]
    for ax, (key, label, subset) in zip(axes, panels, strict=True):
        methods = list(dict.fromkeys(r["method"] for r in subset))
        width = 0.8 / max(len(methods), 1)
        for i, m in enumerate(methods):
            values = [next((r[key] for r in subset if r["method"] == m and r["length"] == n),
                           0) for n in lengths]
            ax.bar([j + i * width for j in range(len(lengths))], values, width, label=m)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(lengths))])
        ax.set_xticklabels([f"length {n}" for n in lengths])
        ax.set_yscale("log")
        top = max((r[key] for r in subset), default=1.0)
        ax.set_ylim(top=top * 40)  # room for the legend above the bars
        ax.set_ylabel(label)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Sentence BLEU on token ids, B = {result['settings']['batch']}, CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, checks the script")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--loop-sentences", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else None,
                        help="device of the device rows (default: cuda when present, else "
                        "none); cpu runs them on the CPU")
    parser.add_argument("--gpu-batches", type=int, nargs="+", default=[4096, 16384],
                        help="batch sizes of the device rows")
    parser.add_argument("--gpu-lengths", type=int, nargs="+", default=None,
                        help="lengths of the device rows (default: --lengths)")
    parser.add_argument("--check-sentences", type=int, default=256,
                        help="sentences of each length checked against sacrebleu on the device")
    parser.add_argument("--min-run-time", type=float, default=2.0)
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop before the next row once this many seconds have passed")
    parser.add_argument("--threads", type=int, default=None)
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    refuse_smoke_record(parser, args)
    out = output_dir(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        args.batch, args.lengths, args.loop_sentences = 64, [8], 16
        args.gpu_batches, args.gpu_lengths, args.min_run_time = [64], [8], 0.01
        args.check_sentences = 16
    gpu_lengths = args.gpu_lengths or args.lengths
    budget = Budget(args.budget_s)
    started = run_record(command_line("bleu.py", argv))
    result = {"run": None, "rows": [], "max_abs_diff_vs_sacrebleu": {}}
    result["machine"] = machine({name: name for name in ("sacrebleu", "nltk", "torchmetrics")},
                                device=args.device)
    result["settings"] = dict(batch=args.batch, lengths=args.lengths, vocab=VOCAB,
                              loop_sentences=args.loop_sentences, device=args.device,
                              gpu_batches=args.gpu_batches, gpu_lengths=gpu_lengths,
                              check_sentences=args.check_sentences,
                              min_run_time=args.min_run_time, smoke=args.smoke)

    def save() -> None:
        add_ratios(result)
        result["stopped"] = budget.stopped
        result["run"] = finish_record(started)
        write_atomic(out / "bleu.json", json.dumps(result, indent=2) + "\n")
        write_atomic(out / "bleu_table.md", table(result))

    save()
    if args.device:
        device_rows(result, torch.device(args.device), args.gpu_batches, gpu_lengths,
                    args.check_sentences, args.min_run_time, budget, save)
    cpu_rows(result, args.batch, args.lengths, args.loop_sentences, args.min_run_time, budget,
             save)
    save()
    plot(result, out / "bleu.png")
    print(table(result))
    print("max |softmetrics - sacrebleu|:", result["max_abs_diff_vs_sacrebleu"])
    print("machine:", result["machine"])
    wrote(out, ["bleu.json (the record)", "bleu_table.md", "bleu.png"])


if __name__ == "__main__":
    main()
