"""The figures the documentation quotes are those of its records.

Every benchmark page rests on a record, a JSON file under `docs/benchmarks/` that its script
writes with `--record`. Three checks keep a page from drifting away from it:

* every record names its command, commit, date, machine and load;
* the tables a page includes are the record rendered by the current code of its script,
  so a table cannot keep the numbers of an older run;
* the prose that interprets a record quotes it: `CLAIMS` lists, per page, each sentence
  that quotes a figure, as a template and the values the record gives for it, and the
  page must contain the sentence with those values (rounded as the template says); and
  `SECTIONS` lists the passages of each page that talk about measurements, in which every
  number must belong to a listed claim or be one of the passage's few stated settings.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RECORDS = DOCS / "benchmarks"
BENCHMARKS = ROOT / "benchmarks"


@functools.cache
def _record(name: str) -> dict:
    return json.loads((RECORDS / name).read_text())


@functools.cache
def _script(name: str):
    """A benchmark script as a module (its folder on the path, as when it runs)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a script's dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _text(path: Path) -> str:
    """A page with its whitespace collapsed, so that a sentence may wrap anywhere."""
    return " ".join(path.read_text().split())


# ---------------------------------------------------------------------------------------
# provenance


# record -> the script that writes it
SCRIPTS = {
    "speed.json": "speed",
    "compiled.json": "compiled",
    "bleu.json": "bleu",
    "ranking.json": "ranking",
    "retrieval.json": "retrieval",
    "contrastive.json": "contrastive",
    "batch_bias.json": "batch_bias",
    "compare_ce.json": "compare_ce",
    "compare_ce_g2p.json": "compare_ce",
    "compare_ce_segmentation.json": "compare_ce",
    "compare_ce_multilabel.json": "compare_ce",
    "compare_ce_pretraining.json": "compare_ce",
    "absent_classes.json": "absent_classes",
    "expected_bleu_alpha.json": "expected_bleu_alpha",
    "segmentation_peers.json": "segmentation_peers",
    "segmentation_speed.json": "segmentation_speed",
}


def test_every_record_is_listed():
    assert {p.name for p in RECORDS.glob("*.json")} == set(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_record_names_its_command_commit_date_machine_and_load(name):
    record = _record(name)
    run, machine = record["run"], record["machine"]
    command = run["command"].split()
    assert command[:2] == ["python", f"benchmarks/{SCRIPTS[name]}.py"] and "--record" in command
    assert re.fullmatch(r"[0-9a-f]{40}", run["commit"]) and run["dirty"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", run["started"])
    assert run["seconds"] > 0
    assert machine["date"] == run["started"][:10]
    for key in ("platform", "cpu", "cpu_count", "torch_threads", "torch"):
        assert machine[key], key
    for load in (machine["load_average"], run["load_average_end"]):
        assert isinstance(load, float) and load >= 0
    assert not record.get("stopped"), "a record of the docs is a complete run"


@pytest.mark.parametrize("script", ["speed", "compiled", "bleu", "ranking", "contrastive",
                                    "batch_bias", "segmentation_peers", "retrieval",
                                    "segmentation_speed"])
@pytest.mark.parametrize("argv", [["--record", "--smoke"], ["--record", "--out", "x"]])
def test_only_a_complete_run_writes_a_record(script, argv, capsys):
    """`--record` writes the docs' record: never from a smoke run, never elsewhere."""
    pytest.importorskip("sklearn")
    with pytest.raises(SystemExit):
        _script(script).main(argv)
    assert "--record" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# the tables the pages include are their records rendered by the current code


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def test_generated_tables_are_their_records_rendered_by_the_current_code():
    pytest.importorskip("sklearn")  # batch_bias.py reads its data with it
    speed, rec = _script("speed"), _record("speed.json")
    assert (RECORDS / "speed_table.md").read_text() == speed.markdown(
        rec["rows"], rec["machine"], rec["stopped"], rec["run"], rec.get("not_run"),
        rec.get("max_call_s"))
    assert (RECORDS / "speed_tuning_table.md").read_text() == speed.tuning_markdown(
        rec["tuning"])

    bleu = _script("bleu")
    assert (RECORDS / "bleu_table.md").read_text() == bleu.table(_record("bleu.json"))

    ranking, rec = _script("_ranking_report"), _record("ranking.json")
    assert (RECORDS / "ranking.md").read_text() == ranking.markdown(rec)
    assert (RECORDS / "ranking_table.md").read_text() == ranking.summary_table(rec)
    assert (RECORDS / "ranking_tiles_table.md").read_text() == _script(
        "_ranking_tiles").tiles_table(rec["tiles"])

    retrieval = _script("retrieval")
    assert (RECORDS / "retrieval_table.md").read_text() == retrieval.table(
        _record("retrieval.json"))

    contrastive, rec = _script("contrastive"), _record("contrastive.json")
    block = contrastive.report_markdown(rec)
    assert (RECORDS / "contrastive_table.md").read_text() == block + "\n"
    page = (DOCS / "contrastive.md").read_text()
    assert _between(page, "<!-- bench:start -->\n", "\n<!-- bench:end -->") == block

    batch_bias, rec = _script("batch_bias"), _record("batch_bias.json")
    assert (RECORDS / "batch_bias_table.md").read_text() == batch_bias.table(
        rec["summary"], rec["settings"], rec["run"], rec["machine"])


def test_the_segmentation_tables_are_their_record_rendered_by_the_current_code():
    pytest.importorskip("monai")
    peers, rec = _script("segmentation_peers"), _record("segmentation_peers.json")
    assert (RECORDS / "segmentation_peers_table.md").read_text() == peers.table(rec)
    assert (RECORDS / "segmentation_peers_api_table.md").read_text() == peers.api_table(rec)
    speed, rec = _script("segmentation_speed"), _record("segmentation_speed.json")
    assert (RECORDS / "segmentation_speed_table.md").read_text() == speed.markdown(
        rec["rows"], rec["machine"], rec["run"], rec["stopped"])


@pytest.mark.parametrize("page, snippet", [
    ("segmentation.md", "segmentation_peers_table.md"),
    ("segmentation.md", "segmentation_peers_api_table.md"),
    ("benchmarks/speed.md", "speed_table.md"),
    ("benchmarks/speed.md", "speed_tuning_table.md"),
    ("benchmarks/speed.md", "segmentation_speed_table.md"),
    ("text.md", "bleu_table.md"),
    ("ranking.md", "ranking_table.md"),
    ("ranking.md", "ranking_tiles_table.md"),
    ("retrieval.md", "retrieval_table.md"),
    ("benchmarks/batch_bias.md", "batch_bias_table.md"),
])
def test_pages_include_their_generated_tables(page, snippet):
    assert f'--8<-- "docs/benchmarks/{snippet}"' in (DOCS / page).read_text()


# ---------------------------------------------------------------------------------------
# the prose quotes its record


@dataclass(frozen=True)
class Claim:
    """A sentence of `page` that quotes `record`: `text` is the sentence as a `str.format`
    template (whitespace free to wrap) and `values(record)` its figures, unrounded."""

    page: str
    record: str
    text: str
    values: Callable[[dict], tuple | dict]

    def expected(self) -> str:
        values = self.values(_record(self.record))
        text = (self.text.format(**values) if isinstance(values, dict)
                else self.text.format(*values))
        return " ".join(text.split())


def _summary(rec: dict, batch: str, momentum: float | None) -> dict:
    return next(s for s in rec["summary"] if s["batch"] == batch and s["momentum"] == momentum)


def _bb(key: str, *cells: tuple[str, float | None]) -> Callable[[dict], list[float]]:
    return lambda rec: [_summary(rec, b, m)[key] for b, m in cells]


def _bb_rows(rec: dict, batch: str, momentum: float | None) -> list[dict]:
    return [r for r in rec["rows"] if r["batch_label"] == batch and r["momentum"] == momentum]


BB = "benchmarks/batch_bias.md"
BATCH_BIAS = [
    Claim(BB, "batch_bias.json",
          "On a set with {:.1%} positives, a batch of {} holds no positive with probability "
          "${:.3f}^{{{}}} \\approx {:.2f}$",
          lambda r: (r["settings"]["positive_rate"], r["settings"]["batch_sizes"][0],
                     1 - r["settings"]["positive_rate"], r["settings"]["batch_sizes"][0],
                     (1 - r["settings"]["positive_rate"]) ** r["settings"]["batch_sizes"][0])),
    Claim(BB, "batch_bias.json",
          "an MLP with two hidden layers of {} units, trained with "
          "`SoftF1Loss(task=\"binary\", momentum=m)`, $m \\in$ {{none, {}, {}}}, batch sizes "
          "{}, {}, {} and the whole training split ({:,}), for the same {:,} Adam steps "
          "(learning rate {:g}) in every setting. At equal steps a batch of {} sees {:g} "
          "epochs and a batch of {} sees {:g}",
          lambda r: (lambda s: (s["hidden"], *s["momenta"][1:], *s["batch_sizes"][:3],
                                s["n_train"], s["steps"], s["lr"],
                                s["batch_sizes"][0],
                                s["steps"] * s["batch_sizes"][0] / s["n_train"],
                                s["batch_sizes"][2],
                                s["steps"] * s["batch_sizes"][2] / s["n_train"]))(r["settings"])),
    Claim(BB, "batch_bias.json", "ISLR `Default` (10,000 samples, {:.1%} positives",
          lambda r: (r["settings"]["positive_rate"],)),
    Claim(BB, "batch_bias.json", "- {} seeds; mean ± standard deviation over seeds.",
          lambda r: (r["settings"]["seeds"],)),
    Claim(BB, "batch_bias.json",
          "bias shrinks with the batch: ${:.3f} \\pm {:.3f}$ at batch 16 (the dataset soft F1 "
          "of these models is about {:.2f}), ${:.3f}$ at 64, ${:.3f}$ at 256.",
          lambda r: (_summary(r, "16", None)["gap"], _summary(r, "16", None)["gap_sd"],
                     statistics.mean(x["train_soft_f1"] for x in _bb_rows(r, "16", None)),
                     _summary(r, "64", None)["gap"], _summary(r, "256", None)["gap"])),
    Claim(BB, "batch_bias.json", "the RMS error is {:.2f}, {:.2f} and {:.2f}.",
          _bb("rmse", ("16", None), ("64", None), ("256", None))),
    Claim(BB, "batch_bias.json",
          "With `momentum=0.9` the bias is at most {:.3f} in absolute value at every batch "
          "size",
          lambda r: (max(abs(_summary(r, b, 0.9)["gap"]) for b in ("16", "64", "256")),)),
    Claim(BB, "batch_bias.json",
          "the RMS error falls to {:.2f}, {:.2f} and {:.2f}; with `momentum=0.99` to {:.3f}, "
          "{:.3f} and {:.3f}.",
          lambda r: (*_bb("rmse", ("16", 0.9), ("64", 0.9), ("256", 0.9))(r),
                     *_bb("rmse", ("16", 0.99), ("64", 0.99), ("256", 0.99))(r))),
    Claim(BB, "batch_bias.json",
          "momentum raised the test F1 from ${:.3f} \\pm {:.3f}$ to ${:.3f} \\pm {:.3f}$ (0.9) "
          "and ${:.3f} \\pm {:.3f}$ (0.99); paired by seed the gain is ${:+.3f} \\pm {:.3f}$ "
          "and ${:+.3f} \\pm {:.3f}$, positive on {} and {} of the {} seeds respectively",
          lambda r: (*[v for m in (None, 0.9, 0.99)
                       for v in _bb("test_f1", ("16", m))(r) + _bb("test_f1_sd", ("16", m))(r)],
                     *[v for m in (0.9, 0.99) for v in
                       _bb("test_f1_vs_none", ("16", m))(r) + _bb("test_f1_vs_none_sd",
                                                                ("16", m))(r)],
                     *[sum(x["test_f1_vs_none"] > 0 for x in _bb_rows(r, "16", m))
                       for m in (0.9, 0.99)],
                     r["settings"]["seeds"])),
    Claim(BB, "batch_bias.json",
          "batch 16 stays below batches of 64 to 256 ({:.3f} to {:.3f})",
          lambda r: (lambda v: (min(v), max(v)))(
              [s["test_f1"] for s in r["summary"] if s["batch"] in ("64", "256")])),
    Claim(BB, "batch_bias.json", "the paired differences lie between ${:+.3f}$ and ${:+.3f}$",
          lambda r: (lambda v: (min(v), max(v)))(
              [s["test_f1_vs_none"] for s in r["summary"]
               if s["batch"] != "16" and s["momentum"] is not None])),
    Claim(BB, "batch_bias.json", "its test F1 was lower on average (${:+.3f} \\pm {:.3f}$)",
          lambda r: (*_bb("test_f1_vs_none", ("full", 0.99))(r),
                     *_bb("test_f1_vs_none_sd", ("full", 0.99))(r))),
]

def _sig(x: float, digits: int) -> float:
    """`x` rounded to `digits` significant digits, as the prose writes large rates."""
    return float(f"{x:.{digits - 1}e}")


def _bleu(rec: dict, length: int, method: str) -> dict:
    return next(r for r in rec["rows"] if r["length"] == length and r["method"] == method)


def _bleu_rates(method: str, digits: int = 3) -> Callable[[dict], list[float]]:
    return lambda rec: [_sig(_bleu(rec, n, method)["sentences_per_s"], digits)
                        for n in rec["settings"]["lengths"]]


def _bleu_ratio(method: str, over: str, key: str = "sentences_per_s", digits: int = 2
                ) -> Callable[[dict], list[float]]:
    return lambda rec: [_sig(_bleu(rec, n, method)[key] / _bleu(rec, n, over)[key], digits)
                        for n in rec["settings"]["lengths"]]


def _power_of_ten(x: float) -> tuple[int, int]:
    mantissa, exponent = f"{x:.0e}".split("e")
    return int(mantissa), int(exponent)


TEXT = [
    Claim("text.md", "bleu.json",
          "`python benchmarks/bleu.py --record` times sentence BLEU for $B = {}$ random "
          "sentences of {} and {} token ids (vocabulary {};",
          lambda r: (r["settings"]["batch"], *r["settings"]["lengths"], r["settings"]["vocab"])),
    Claim("text.md", "bleu.json", "in a Python loop over pre-built strings (on the first {} "
          "sentences)", lambda r: (r["settings"]["loop_sentences"],)),
    Claim("text.md", "bleu.json",
          "In this record one `bleu_score` call scored {:,.0f} sentences of {} tokens per "
          "second and {:,.0f} of {} tokens: {:.0f} and {:.0f} times sacrebleu, {:.0f} and "
          "{:.0f} times NLTK and {:.0f} and {:.0f} times torchmetrics; without `vocab_size` "
          "(which makes the first order sort row by row) {:,.0f} and {:,.0f}.",
          lambda r: (_bleu_rates("softmetrics")(r)[0], r["settings"]["lengths"][0],
                     _bleu_rates("softmetrics")(r)[1], r["settings"]["lengths"][1],
                     *_bleu_ratio("softmetrics", "sacrebleu")(r),
                     *_bleu_ratio("softmetrics", "nltk")(r),
                     *_bleu_ratio("softmetrics", "torchmetrics")(r),
                     *_bleu_rates("softmetrics (no vocab_size, no validation)")(r))),
    Claim("text.md", "bleu.json",
          "On one thread it scored {:,.0f} and {:,.0f} per second, and per CPU-second {:.1f} "
          "and {:.1f} times sacrebleu.",
          lambda r: (*_bleu_rates("softmetrics (1 thread)")(r),
                     *_bleu_ratio("softmetrics (1 thread)", "sacrebleu",
                                  "sentences_per_cpu_s", digits=3)(r))),
    Claim("text.md", "bleu.json",
          "`sacrebleu.sentence_bleu` ran at {:.2f} and {:.2f} of the rate of the reused "
          "`BLEU` object with `tokenize=\"none\"`, and at {:.2f} and {:.2f} with its default "
          "tokenizer.",
          lambda r: (*_bleu_ratio("sacrebleu.sentence_bleu (tokenize none)", "sacrebleu")(r),
                     *_bleu_ratio("sacrebleu.sentence_bleu (tokenize 13a)", "sacrebleu")(r))),
    Claim("text.md", "bleu.json", "Results agree with sacrebleu to ${} \\times 10^{{{}}}$.",
          lambda r: _power_of_ten(max(r["max_abs_diff_vs_sacrebleu"].values()))),
]

def _sci(x: float) -> str:
    """`x` with two significant digits as the page's TeX writes it: `6.4 \\cdot 10^{-4}`."""
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa} \\cdot 10^{{{int(exponent)}}}"


def _worked(rec: dict, scores: str, alpha: float) -> dict:
    return next(r for r in rec["worked_example"]["rows"]
                if r["scores"] == scores and r["alpha"] == alpha)


def _alpha_curve(rec: dict, mode: str, key: str, alpha: float) -> float:
    return rec["curves"][mode][key][rec["alphas"].index(alpha)]


def _alpha_doc(rec: dict, i: int, key: str) -> float:
    return rec["documents"][i][key]


ALPHA = "expected_bleu_alpha.json"
EXPECTED_BLEU_ALPHA = [
    Claim("text.md", ALPHA,
          "At $\\alpha = 1$ on sequence scores the weights are {:.3f} and {:.3f} on the two "
          "shortest candidates and below $10^{{-6}}$ on the others ({:.2f} effective "
          "candidates): the risk, {:.3f}, is nearly that of the shortest candidate, and the "
          "gradient (norm ${}$) reaches {:.2f} candidates, not the two with the best BLEU "
          "({:.3f} and {:.3f}), which get ${}$ and ${}$.",
          lambda r: (*_worked(r, "sequence", 1.0)["weights"][:2],
                     _worked(r, "sequence", 1.0)["effective_candidates"],
                     _worked(r, "sequence", 1.0)["risk"],
                     _sci(_worked(r, "sequence", 1.0)["gradient_norm"]),
                     _worked(r, "sequence", 1.0)["candidates_reached"],
                     *r["worked_example"]["bleu"][2:],
                     *(_sci(g) for g in _worked(r, "sequence", 1.0)["gradient"][2:]))),
    Claim("text.md", ALPHA,
          "At $\\alpha = 0.005$ the weights are nearly uniform ({:.3f} to {:.3f}; {:.2f} "
          "effective) and the gradient pushes the two best candidates up, but its norm is "
          "${}$.",
          lambda r: (_worked(r, "sequence", 0.005)["weights"][0],
                     _worked(r, "sequence", 0.005)["weights"][-1],
                     _worked(r, "sequence", 0.005)["effective_candidates"],
                     _sci(_worked(r, "sequence", 0.005)["gradient_norm"]))),
    Claim("text.md", ALPHA,
          "Per token at $\\alpha = 1$ the weights are {:.3f}, {:.3f}, {:.3f} and {:.3f} "
          "({:.2f} effective), and the gradient (norm ${}$) raises the two best candidates "
          "and lowers the two others.",
          lambda r: (*_worked(r, "per token", 1.0)["weights"],
                     _worked(r, "per token", 1.0)["effective_candidates"],
                     _sci(_worked(r, "per token", 1.0)["gradient_norm"]))),
    Claim("text.md", ALPHA,
          "then on $K = {}$ distinct candidates sampled for each of {} test words from an "
          "early model of the grapheme-to-phoneme task",
          lambda r: (r["settings"]["samples"], r["settings"]["sources"])),
    Claim("text.md", ALPHA,
          "The sequence log-probabilities of one word's candidates span {:.1f} nats (median), "
          "{:.2f} nats per token. At $\\alpha = 0.005$ the weights are uniform under both "
          "scores ({:.2f} effective candidates), and the sequence gradient norm is ${}$, "
          "against ${}$ at $\\alpha = 1$ ({:.2f} effective candidates); per token, "
          "$\\alpha = 1$ leaves {:.2f} effective candidates.",
          lambda r: (_alpha_doc(r, 0, "median_log_prob_span"),
                     _alpha_doc(r, 0, "median_per_token_span"),
                     min(_alpha_curve(r, m, "effective_candidates", 0.005)
                         for m in ("sequence", "per_token")),
                     _sci(_alpha_curve(r, "sequence", "gradient_norm", 0.005)),
                     _sci(_alpha_curve(r, "sequence", "gradient_norm", 1.0)),
                     _alpha_curve(r, "sequence", "effective_candidates", 1.0),
                     _alpha_curve(r, "per_token", "effective_candidates", 1.0))),
    Claim("text.md", ALPHA,
          "on sequence scores it is largest at $\\alpha = {:g}$, the end of the grid, where "
          "the weights sit on one candidate ({:.2f} effective), and per token at "
          "$\\alpha = {:g}$ ({:.2f} effective).",
          lambda r: (r["summary"]["sequence"]["alpha_max_gradient"],
                     _alpha_curve(r, "sequence", "effective_candidates",
                                  r["summary"]["sequence"]["alpha_max_gradient"]),
                     r["summary"]["per_token"]["alpha_max_gradient"],
                     _alpha_curve(r, "per_token", "effective_candidates",
                                  r["summary"]["per_token"]["alpha_max_gradient"]))),
    Claim("text.md", ALPHA,
          "Over documents of {:.1f} to {:.1f} phonemes, the span of the sequence "
          "log-probabilities grows from {:.1f} to {:.1f} nats, more slowly than the length "
          "(the words' scores are independent of each other), and the span per token falls "
          "from {:.2f} to {:.2f}. The $\\alpha$ that leaves {:g} of the {} candidates "
          "effective falls from {:.2f} to {:.2f} on sequence scores and rises from {:.1f} to "
          "{:.1f} per token",
          lambda r: (_alpha_doc(r, 0, "mean_ref_length"), _alpha_doc(r, -1, "mean_ref_length"),
                     _alpha_doc(r, 0, "median_log_prob_span"),
                     _alpha_doc(r, -1, "median_log_prob_span"),
                     _alpha_doc(r, 0, "median_per_token_span"),
                     _alpha_doc(r, -1, "median_per_token_span"),
                     r["settings"]["samples"] / 2, r["settings"]["samples"],
                     _alpha_doc(r, 0, "alpha_half_spread_sequence")[1],
                     _alpha_doc(r, -1, "alpha_half_spread_sequence")[1],
                     _alpha_doc(r, 0, "alpha_half_spread_per_token")[1],
                     _alpha_doc(r, -1, "alpha_half_spread_per_token")[1])),
    Claim("text.md", ALPHA,
          "and $\\alpha = 1$ on sequence scores leaves {:.2f} of the {} effective.",
          lambda r: (_alpha_curve(r, "sequence", "effective_candidates", 1.0),
                     r["settings"]["samples"])),
]


def _ranking(rec: dict, setting: str, method: str, n: int) -> dict:
    return next(r for r in rec["rows"] if r["device"] == "cpu" and r["setting"] == setting
                and r["method"] == method and r["n"] == n)


def _ranking_memory(rec: dict) -> tuple[float, ...]:
    out = []
    for method in ("softmetrics", "softmetrics AUROC"):
        mib = [r["peak_extra_mib"] for r in rec["rows"] if r["device"] == "cpu"
               and r["setting"] == "binary" and r["method"] == method and r["n"] >= 4000]
        out += [min(mib), max(mib)]
    return tuple(out)


def _retrieval(rec: dict) -> tuple:
    fmt = _script("_ranking_report")._fmt_time
    b = max(r["n"] for r in rec["rows"] if r["setting"] == "retrieval")
    ours = _ranking(rec, "retrieval", "softmetrics", b)
    peer = _ranking(rec, "retrieval", "pytorch-metric-learning", b)
    return (b, fmt(ours), ours["peak_extra_mib"], fmt(peer), peer["peak_extra_mib"])


def _multiclass(rec: dict) -> tuple:
    fmt = _script("_ranking_report")._fmt_time
    rows = {(r["method"], r["n"], r["classes"]): r for r in rec["rows"]
            if r["device"] == "cpu" and r["setting"] == "multiclass"}
    sizes = [(4000, 10), (2000, 100)]
    ours = [rows[("softmetrics", n, c)] for n, c in sizes]
    every = [rows[("every pair", n, c)] for n, c in sizes]
    return (*sizes[0], fmt(ours[0]), fmt(every[0]), every[0]["median_s"] / ours[0]["median_s"],
            *sizes[1], fmt(ours[1]), fmt(every[1]), every[1]["median_s"] / ours[1]["median_s"],
            *[r["peak_extra_mib"] for r in ours], *[r["peak_extra_mib"] for r in every])


def _multilabel(rec: dict) -> tuple:
    """Long-tailed multilabel soft AP: listed against every pair at the smaller size,
    with the tiles' pairs and the labels' positive-negative pairs (in millions), and the
    listed step alone at the larger size."""
    fmt = _script("_ranking_report")._fmt_time
    rows = {(r["method"], r["n"], r["classes"]): r for r in rec["rows"]
            if r["device"] == "cpu" and r["setting"] == "multilabel"}
    (n, c), (big, _) = [(4000, 20), (16000, 20)]
    ours, every, large = (rows[("softmetrics", n, c)], rows[("every pair", n, c)],
                          rows[("softmetrics", big, c)])
    needed = _script("ranking").pairs_of("multilabel", "softmetrics", n, c, "cpu")
    return (n, c, fmt(ours), fmt(every), every["median_s"] / ours["median_s"],
            ours["pairs"] / 1e6, every["pairs"] / 1e6, needed / 1e6, big, c, fmt(large),
            large["pairs"] / 1e6)


def _tiles(rec: dict) -> tuple:
    rows = rec["tiles"]["rows"]
    at_20 = [r["ratio"] for r in rows if r["tile_elements"] == 2**20]
    at_18 = [r["ratio"] for r in rows if r["tile_elements"] == 2**18]
    wide = max(r["n"] for r in rec["rows"] if r["setting"] == "retrieval")
    return (min(at_20), max(at_20), min(at_18), max(at_18), wide, wide)


def _compiled_ap(rec: dict) -> tuple:
    """The compiled binary soft AP against eager mode's, and its first call's time beyond
    a step (the run's first apart: it starts the compiler's workers)."""
    rows = [(_ranking(rec, "binary", "softmetrics", r["n"]), r) for r in rec["rows"]
            if r["device"] == "cpu" and r["method"] == "softmetrics, compiled"]
    ratios = [c["median_s"] / e["median_s"] for e, c in rows]
    extra = [c["first_s"] - c["median_s"] for _, c in rows]
    return (min(ratios), max(ratios), rows[0][1]["n"], rows[-1][1]["n"], min(extra[1:]),
            max(extra[1:]), extra[0])


RANKING = [
    Claim("ranking.md", "ranking.json",
          "In the benchmark's record the compiled binary soft AP took {:.2f}x to {:.2f}x the "
          "time of eager mode for $N$ from {:,} to {:,}: compiling leaves the pairwise work, "
          "nearly all of a step, as it is. Its first call took {:.1f} to {:.1f} s longer than "
          "a step ({:.1f} s for the run's first compilation, which also starts the "
          "compiler's worker processes).", _compiled_ap),
    Claim("ranking.md", "ranking.json",
          "(in `benchmarks/ranking.py`'s record, {:,} random scores: AP {:.3f} / {:.3f} / "
          "{:.3f} and cAP {:.3f} / {:.3f} / {:.3f} for {:.0%} / {:.0%} / {:.0%} positives)",
          lambda r: (r["random_ranking"][0]["n"],
                     *[x["ap"] for x in r["random_ranking"]],
                     *[x["cap"] for x in r["random_ranking"]],
                     *[x["positive_rate"] for x in r["random_ranking"]])),
    Claim("ranking.md", "ranking.json",
          "for the full matrix under autograd at that size the benchmark below estimates "
          "{:.0f} GiB (16 bytes per pair) and does not run it.",
          lambda r: (_ranking(r, "binary", "full matrix", 100000)["estimated_gib"],)),
    Claim("ranking.md", "ranking.json",
          "Measured on the CPU, the peak extra memory of one step stayed between {:.0f} and "
          "{:.0f} MiB for soft AP and between {:.0f} and {:.0f} MiB for soft AUROC, for $N$ "
          "from 4,000 to 100,000.", _ranking_memory),
    Claim("ranking.md", "ranking.json",
          "B = {} took {} and {:.0f} MiB here against {} and {:,.0f} MiB.", _retrieval),
    Claim("ranking.md", "ranking.json",
          "at (N, C) = ({:,}, {}) it took {} against {} ({:.1f}x less) and at ({:,}, {}) {} "
          "against {} ({:.1f}x less); the peak extra memory of one step was {:.0f} and {:.0f} "
          "MiB against {:.0f} and {:.0f} MiB.", _multiclass),
    Claim("ranking.md", "ranking.json",
          "at (N, C) = ({:,}, {}) it took {} against {} ({:.1f}x less), its tiles computing "
          "{:.0f} million pairs per pass against {:.0f} million, where the labels have "
          "{:.0f} million pairs of a positive and a negative; at ({:,}, {}) it took {} "
          "({:.0f} million pairs per pass).", _multilabel),
    Claim("ranking.md", "ranking.json",
          "with $2^{{20}}$ pairs per tile, the default, it took {:.2f}x to {:.2f}x the time of "
          "$2^{{22}}$ on these problems, and with $2^{{18}}$ {:.2f}x to {:.2f}x. The default is "
          "the larger of the two because a tile of $2^{{18}}$ pairs holds few rows of a wide "
          "input: a single row of the {} x {} retrieval input below.", _tiles),
]

# the multiclass losses of the Tversky family and MCC (top-k and the naive loss apart)
MULTICLASS = ["SoftAccuracyLoss", "SoftPrecisionLoss", "SoftRecallLoss", "SoftF1Loss",
              "SoftFBetaLoss", "SoftJaccardLoss", "SoftTverskyLoss", "SoftMCCLoss"]
MULTILABEL = ["SoftF1Loss (multilabel)", "SoftMCCLoss (multilabel)",
              "SoftAccuracyLoss (multilabel)"]
SOFT_TARGETS = ["SoftF1Loss (soft targets)", "SoftMCCLoss (soft targets)",
                "SoftAccuracyLoss (soft targets)"]


def _speed(rec: dict, losses: list[str], key: str = "ratio", n: int | None = None,
           c: int | None = None, exclude: tuple[int, int] | None = None) -> list[float]:
    return [r[key] for r in rec["rows"] if r["device"] == "cpu" and r["loss"] in losses
            and n in (None, r["n"]) and c in (None, r["c"]) and (r["n"], r["c"]) != exclude]


def _span(values: list[float]) -> tuple[float, float]:
    return min(values), max(values)


def _one(rec: dict, loss: str, n: int, c: int, key: str = "ratio") -> float:
    (value,) = _speed(rec, [loss], key, n, c)
    return value


def _faults(values: list[float]) -> str:
    """A span of page-fault counts as the page writes it: one number when they agree."""
    low, high = (f"{v:.0f}" for v in _span(values))
    return low if low == high else f"{low} to {high}"


def _ratios(values: list[float]) -> str:
    """A span of ratios as the page writes it: one ratio when they agree to 2 decimals."""
    low, high = (f"{v:.2f}x" for v in _span(values))
    return low if low == high else f"{low} to {high}"


def _not_run(rec: dict, loss: str, n: int, c: int) -> float:
    return next(r["estimated_s"] for r in rec["not_run"]
                if (r["loss"], r["n"], r["c"]) == (loss, n, c))


# the four sizes of the record, headline first; the rows with an option and the same
# loss without it
SPEED_SIZES = [(65536, 1000), (4096, 1000), (65536, 10), (4096, 10)]
OPTIONS = ["SoftF1Loss (class_weights)", "SoftDiceLoss (generalized)",
           "SoftTverskyLoss (gamma=0.75)"]


def _ce_ms(rec: dict, n: int, c: int) -> float:
    """The cross-entropy time the table prints for (n, c) (the last row timed against it)."""
    return [r["baseline_ms"] for r in rec["rows"] if r["device"] == "cpu"
            and r["baseline"] == "F.cross_entropy" and (r["n"], r["c"]) == (n, c)][-1]


def _width(rec: dict, width: int, key: str, kernels: str = "AVX512") -> float:
    return next(w[key] for w in rec["tuning"]["softmax_widths"]
                if w["width"] == width and w["capability"] == kernels)


def _pad(rec: dict, kernels: str, n: int, c: int, path: str, key: str = "ratio") -> float:
    """`SoftF1Loss`'s ratio (or `key`) at (n, c) padded or unpadded with `kernels`, asserting which
    of them `softmax_width` chose when the record was made: padding to the kernels' lanes
    from 1024 rows, where it at most multiplies the row by 6."""
    row = next(r for r in rec["tuning"]["padding"]
               if r["capability"] == kernels and (r["n"], r["c"]) == (n, c))
    assert row["padded_by_default"] == (n >= 1024 and c < row["lanes"] <= 6 * c)
    return row[path][key]


def _small(rec: dict, n: int, c: int, path: str) -> float:
    """`SoftF1Loss`'s ratio at (n, c) on the plain or the blocked path, asserting which of
    them `SMALL_COUNTS_ENTRIES` chose when the record was made."""
    row = next(r for r in rec["tuning"]["small_inputs"] if (r["n"], r["c"]) == (n, c))
    assert row["plain_by_default"] == (n * c <= 1 << 16)
    return row[path]["ratio"]


def _block(rec: dict, allocator: str, entries: int, key: str = "ratio") -> float:
    return next(b[key] for b in rec["tuning"]["block_sizes"]
                if b["allocator"] == allocator and b["block_entries"] == entries)


SP = "benchmarks/speed.md"
SPEED = [
    Claim(SP, "speed.json", "`python benchmarks/speed.py --record --threads {}` times forward "
          "+ backward", lambda r: (r["machine"]["torch_threads"],)),
    Claim(SP, "speed.json", "Each of {} rounds times the baseline, the loss and the baseline "
          "again", lambda r: (r["rows"][0]["rounds"],)),
    Claim(SP, "speed.json",
          "This record ran on an otherwise idle machine (load average {:.1f} at the start, left "
          "by the runs before it, and {:.1f} at the end, on {} cores) and took {:.1f} minutes;",
          lambda r: (r["machine"]["load_average"], r["run"]["load_average_end"],
                     r["machine"]["cpu_count"], r["run"]["seconds"] / 60)),
    Claim(SP, "speed.json",
          "A row whose one call is estimated above {:g} s is not run, and its cell gives the "
          "estimate: the second of two calls on the first {} samples, times N / {}",
          lambda r: (r["max_call_s"], r["not_run"][0]["probe_rows"],
                     r["not_run"][0]["probe_rows"])),
    Claim(SP, "speed.json",
          "at N = 65536 it falls short for a loss whose work outgrows the cache (`LovaszLoss` "
          "was estimated at {:.1f} s and took {:.1f} s)",
          lambda r: (_one(r, "LovaszLoss", 65536, 1000, "estimated_s"),
                     _one(r, "LovaszLoss", 65536, 1000, "loss_ms") / 1e3)),
    Claim(SP, "speed.json",
          "The multiclass losses took {:.2f}x to {:.2f}x the time of cross-entropy at N = {} "
          "and {:.2f}x to {:.2f}x at N = {}; top-k accuracy {:.2f}x and {:.2f}x, the naive "
          "soft F1 {:.2f}x and {:.2f}x.",
          lambda r: (*_span(_speed(r, MULTICLASS, n=4096, c=1000)), 4096,
                     *_span(_speed(r, MULTICLASS, n=65536, c=1000)), 65536,
                     *_speed(r, ["SoftTopKAccuracyLoss"], n=4096, c=1000),
                     *_speed(r, ["SoftTopKAccuracyLoss"], n=65536, c=1000),
                     *_speed(r, ["naive soft F1"], n=4096, c=1000),
                     *_speed(r, ["naive soft F1"], n=65536, c=1000))),
    Claim(SP, "speed.json",
          "The multiclass losses took {:.2f}x to {:.2f}x the time of cross-entropy at N = 4096, "
          "where cross-entropy itself takes {:.3f} ms, and {} at N = 65536 ({:.3f} ms).",
          lambda r: (*_span(_speed(r, MULTICLASS, n=4096, c=10)), _ce_ms(r, 4096, 10),
                     _ratios(_speed(r, MULTICLASS, n=65536, c=10)), _ce_ms(r, 65536, 10))),
    Claim(SP, "speed.json",
          "At (65536, 1000), where an (N, C) buffer is 256 MiB, 65536 pages of 4 KiB, the "
          "multiclass losses took {} page faults per step and cross-entropy {}.",
          lambda r: (_faults(_speed(r, MULTICLASS, "loss_faults", 65536, 1000)),
                     _faults(_speed(r, MULTICLASS, "baseline_faults", 65536, 1000)))),
    Claim(SP, "speed.json",
          "At that size the multiclass losses took {} page faults per step (the median over "
          "the rounds) and cross-entropy {}",
          lambda r: ("no" if max(_speed(r, MULTICLASS, "loss_faults", 4096, 1000)) == 0 else
                     _faults(_speed(r, MULTICLASS, "loss_faults", 4096, 1000)),
                     _faults(_speed(r, MULTICLASS, "baseline_faults", 4096, 1000)))),
    Claim(SP, "speed.json",
          "At C = 1000 they took {:.2f}x to {:.2f}x, as the losses without them. At (65536, "
          "10) they took {:.2f}x to {:.2f}x against {:.2f}x for `SoftF1Loss` and {:.2f}x for "
          "`SoftTverskyLoss`, and the cross-entropy steps around them took {:.2f} to {:.2f} "
          "ms against {:.2f} ms in the `SoftF1Loss` row: no cost of their own to measure",
          lambda r: (*_span(_speed(r, OPTIONS, c=1000)),
                     *_span(_speed(r, OPTIONS, n=65536, c=10)),
                     _one(r, "SoftF1Loss", 65536, 10), _one(r, "SoftTverskyLoss", 65536, 10),
                     *_span(_speed(r, OPTIONS, "baseline_ms", 65536, 10)),
                     _one(r, "SoftF1Loss", 65536, 10, "baseline_ms"))),
    Claim(SP, "speed.json",
          "At (4096, 10) they took {:.2f}x to {:.2f}x, against the {:.2f}x to {:.2f}x of the "
          "losses without them:",
          lambda r: (*_span(_speed(r, OPTIONS, n=4096, c=10)),
                     *_span(_speed(r, MULTICLASS, n=4096, c=10)))),
    Claim(SP, "speed.json",
          "`LovaszLoss` took {:.2f}x the time of cross-entropy at (65536, 1000), {:.2f}x at "
          "(4096, 1000), {:.2f}x at (65536, 10) and {:.2f}x at (4096, 10):",
          lambda r: [_one(r, "LovaszLoss", n, c) for n, c in SPEED_SIZES]),
    Claim(SP, "speed.json",
          "smp's Lovász-softmax took {:.2f}x at (4096, 1000), {:.1f} times the ratio of "
          "`LovaszLoss`, and {:.2f}x and {:.2f}x at (65536, 10) and (4096, 10), {:.2f} and "
          "{:.2f} times;",
          lambda r: (_one(r, "smp LovaszLoss", 4096, 1000),
                     _one(r, "smp LovaszLoss", 4096, 1000) / _one(r, "LovaszLoss", 4096, 1000),
                     _one(r, "smp LovaszLoss", 65536, 10), _one(r, "smp LovaszLoss", 4096, 10),
                     *[_one(r, "smp LovaszLoss", n, c) / _one(r, "LovaszLoss", n, c)
                       for n, c in SPEED_SIZES[2:]])),
    Claim(SP, "speed.json",
          "At (65536, 1000) it was not run: one call was estimated at {:.0f} s.",
          lambda r: (_not_run(r, "smp LovaszLoss", 65536, 1000),)),
    Claim(SP, "speed.json",
          "at (65536, 1000) {} page faults per step against the baseline's {}.",
          lambda r: (_faults(_speed(r, MULTILABEL, "loss_faults", 65536, 1000)),
                     _faults(_speed(r, MULTILABEL, "baseline_faults", 65536, 1000)))),
    Claim(SP, "speed.json",
          "summed as log-sigmoids) took {:.2f}x to {:.2f}x of "
          "`binary_cross_entropy_with_logits`.",
          lambda r: _span(_speed(r, ["SoftExactMatchLoss (multilabel)"]))),
    Claim(SP, "speed.json",
          "took {:.2f}x of `binary_cross_entropy_with_logits` at (4096, 10), {:.0f} ms per "
          "step: it compares the N^2/4 pairs of each label ({:.0f} million here)",
          lambda r: (_one(r, "SoftAUROCLoss (multilabel, max_fpr=0.1)", 4096, 10),
                     _one(r, "SoftAUROCLoss (multilabel, max_fpr=0.1)", 4096, 10, "loss_ms"),
                     4096 * 4096 / 4 * 10 / 1e6)),
    Claim(SP, "speed.json",
          "`SoftF1Loss`, `SoftMCCLoss` and `SoftAccuracyLoss` took {:.2f}x to {:.2f}x at "
          "C = 1000 and {:.2f}x to {:.2f}x at C = 10.",
          lambda r: (*_span(_speed(r, SOFT_TARGETS, c=1000)),
                     *_span(_speed(r, SOFT_TARGETS, c=10)))),
    Claim(SP, "speed.json",
          "`SoftCohenKappaLoss` reads the counts of the losses above and took {:.2f}x and "
          "{:.2f}x at C = 1000 (N = 4096 and 65536); with quadratic weights it took {:.2f}x "
          "and {:.2f}x there",
          lambda r: (_one(r, "SoftCohenKappaLoss", 4096, 1000),
                     _one(r, "SoftCohenKappaLoss", 65536, 1000),
                     _one(r, "SoftCohenKappaLoss (quadratic)", 4096, 1000),
                     _one(r, "SoftCohenKappaLoss (quadratic)", 65536, 1000))),
    Claim(SP, "speed.json", "**Top-k accuracy** took {:.2f}x to {:.2f}x:",
          lambda r: _span(_speed(r, ["SoftTopKAccuracyLoss"]))),
    Claim(SP, "speed.json",
          "**Multilabel losses** took {:.2f}x to {:.2f}x of `binary_cross_entropy_with_logits`, "
          "except at (4096, 10), where they took {:.2f}x to {:.2f}x of a {:.3f} ms to {:.3f} ms "
          "baseline.",
          lambda r: (*_span(_speed(r, MULTILABEL, exclude=(4096, 10))),
                     *_span(_speed(r, MULTILABEL, n=4096, c=10)),
                     *_span(_speed(r, MULTILABEL, "baseline_ms", 4096, 10)))),
    Claim(SP, "speed.json",
          "In this record the softmax over (4096, 10) took {:.0f} us with the AVX-512 kernels "
          "and over (4096, 16) {:.0f} us, {:.2f}x as long for fewer columns; the log-softmax "
          "took {:.0f} us and {:.0f} us. With the AVX2 kernels (4096, 4) took {:.0f} us and "
          "(4096, 8) {:.0f} us.",
          lambda r: (_width(r, 10, "softmax_us"), _width(r, 16, "softmax_us"),
                     _width(r, 10, "softmax_us") / _width(r, 16, "softmax_us"),
                     _width(r, 10, "log_softmax_us"), _width(r, 16, "log_softmax_us"),
                     _width(r, 4, "softmax_us", "AVX2"), _width(r, 8, "softmax_us", "AVX2"))),
    Claim(SP, "speed.json",
          "there `SoftF1Loss` took {:.2f}x of a {:.3f} ms cross-entropy at (4096, 10) and "
          "{:.2f}x of {:.3f} ms at (65536, 10) (the padding table, below).",
          lambda r: [x for n in (4096, 65536)
                     for x in (_pad(r, "AVX2", n, 10, "unpadded"),
                               _pad(r, "AVX2", n, 10, "unpadded", "baseline_ms"))]),
    Claim(SP, "speed.json",
          "in this record it took {:.2f}x and {:.2f}x at (4096, 10) and (65536, 10));",
          lambda r: (_one(r, "SoftCohenKappaLoss (quadratic)", 4096, 10),
                     _one(r, "SoftCohenKappaLoss (quadratic)", 65536, 10))),
    Claim(SP, "speed.json",
          "With the AVX-512 kernels `SoftF1Loss` took {:.2f}x of cross-entropy at (4096, 10) "
          "padded against {:.2f}x unpadded, and {:.2f}x against {:.2f}x at (65536, 10); at "
          "(1024, 10) {:.2f}x against {:.2f}x, at (512, 10) {:.2f}x against {:.2f}x, and at "
          "(1024, 4) {:.2f}x against {:.2f}x: from a few thousand rows the padding pays, for ten "
          "classes as for four (padded to four times their width); at a thousand rows the two "
          "paths change places from one record to the next, so the padding starts at about "
          "its break-even point. "
          "Two classes padded to 16, eight times the row, took {:.2f}x against {:.2f}x at "
          "(4096, 2) and {:.2f}x against {:.2f}x at (65536, 2): the padding paid at 65536 rows "
          "but cost at 4096, so they stay narrow; padded to 8 by the AVX2 kernels, four times "
          "the row, they took {:.2f}x against {:.2f}x at (65536, 2).",
          lambda r: (*[_pad(r, "AVX512", n, c, path)
                       for n, c in [(4096, 10), (65536, 10), (1024, 10), (512, 10), (1024, 4),
                                    (4096, 2), (65536, 2)]
                       for path in ("padded", "unpadded")],
                     *[_pad(r, "AVX2", 65536, 2, path) for path in ("padded", "unpadded")])),
    Claim(SP, "speed.json",
          "`SoftF1Loss` took {:.2f}x to {:.2f}x of cross-entropy's time at (4096, 1000) over "
          "the block sizes, {:.2f}x with blocks of 2^17. With glibc's default allocator one "
          "block over the whole tensor took {:.2f}x, with {:.0f} page faults per step against "
          "{:.0f} with blocks of 2^17 ({:.2f}x). The larger blocks of 2^18, 2^19 and 2^20 "
          "took {:.2f}x, {:.2f}x and "
          "{:.2f}x with the default allocator and {:.2f}x, {:.2f}x and {:.2f}x with the one "
          "that keeps memory.",
          lambda r: (*_span([b["ratio"] for b in r["tuning"]["block_sizes"]
                             if b["allocator"] == "keep"]),
                     _block(r, "keep", 1 << 17), _block(r, "default", 0),
                     _block(r, "default", 0, "loss_faults"),
                     _block(r, "default", 1 << 17, "loss_faults"),
                     _block(r, "default", 1 << 17),
                     *[_block(r, a, 1 << e) for a in ("default", "keep") for e in (18, 19, 20)])),
    Claim(SP, "speed.json",
          "`SoftF1Loss` took {:.2f}x of cross-entropy at (64, 10) on the plain path against "
          "{:.2f}x on the blocked one, and {:.2f}x against {:.2f}x at (4096, 10); at (64, 1000) "
          "and (16384, 4) {:.2f}x against {:.2f}x and {:.2f}x against {:.2f}x. Above the "
          "constant the two paths were as close: {:.2f}x against {:.2f}x at (16384, 10), "
          "{:.2f}x against {:.2f}x at (4096, 100) and {:.2f}x against {:.2f}x at (65536, 4);",
          lambda r: [_small(r, n, c, path) for n, c in [(64, 10), (4096, 10), (64, 1000),
                                                        (16384, 4), (16384, 10), (4096, 100),
                                                        (65536, 4)]
                     for path in ("plain", "blocked")]),
]

INDEX = [
    Claim("index.md", "speed.json",
          "the multiclass losses took {:.2f}x to {:.2f}x the time of `F.cross_entropy` with "
          "{} classes, and {:.2f}x to {:.2f}x with {} classes, where a cross-entropy step "
          "takes {:.3f} ms to {:.3f} ms;",
          lambda r: (*_span(_speed(r, MULTICLASS, c=1000)), 1000,
                     *_span(_speed(r, MULTICLASS, c=10)), 10,
                     _ce_ms(r, 4096, 10), _ce_ms(r, 65536, 10))),
]

INDEX += [
    Claim("index.md", "speed.json",
          "on a CPU without AVX-512 they took {:.2f}x of cross-entropy at (4096, 10) and "
          "{:.2f}x at (65536, 10)",
          lambda r: (_pad(r, "AVX2", 4096, 10, "unpadded"),
                     _pad(r, "AVX2", 65536, 10, "unpadded"))),
    Claim("classification.md", "speed.json",
          "multiclass losses on label-smoothed targets took {:.2f}x to {:.2f}x the time of "
          "cross-entropy on the same probabilities with 1000 classes, and the multilabel "
          "losses on float 0/1 labels {:.2f}x to {:.2f}x of "
          "`binary_cross_entropy_with_logits`.",
          lambda r: (*_span(_speed(r, SOFT_TARGETS, c=1000)),
                     *_span(_speed(r, MULTILABEL, c=1000)))),
    Claim("classification.md", "speed.json",
          "which the soft counts do not: in the [Speed](benchmarks/speed.md) record "
          "`LovaszLoss` took {:.2f}x to {:.2f}x the time of cross-entropy on the CPU, where "
          "the soft counts took {:.2f}x to {:.2f}x.",
          lambda r: (*_span(_speed(r, ["LovaszLoss"])), *_span(_speed(r, MULTICLASS)))),
]


def _nce(rec: dict, method: str, n: int, key: str = "peak_extra_bytes") -> float:
    return next(r[key] for r in rec["rows"] if r["method"] == method and r["n"] == n)


def _bytes(x: float) -> str:
    return _script("contrastive")._fmt_bytes(x)


def _bytes_per_pair(rec: dict) -> float:
    return _nce(rec, "naive", 16384) / 16384**2


def _scale(rec: dict) -> dict:
    """The automatic tiles at D = 512 (one direction): the growth per added N x D float32
    buffer between the two sizes, the memory that does not grow, and the projection to
    N = 2^20 (GiB: extra, with float32 embeddings, and with bfloat16 ones)."""
    rows = sorted((r for r in rec["scale"] if r["method"] == "softmetrics_auto"),
                  key=lambda r: r["n"])
    (n1, p1), (n2, p2) = ((r["n"], r["peak_extra_bytes"]) for r in rows)
    d = rows[0]["d"]
    slope = (p2 - p1) / (4 * d * (n2 - n1))
    fixed = p2 - slope * 4 * d * n2
    extra = (slope * 4 * d * 2**20 + fixed) / 2**30
    return dict(n1=n1, p1=p1, n2=n2, p2=p2, slope=slope, fixed=fixed, extra=extra)


CN = "contrastive.md"
CONTRASTIVE = [
    Claim(CN, "contrastive.json",
          "about {:.0f} bytes per pair in float32 ({} at $N = 16384$, measured below), so "
          "about {:.0f} GiB at $N = 65536$.",
          lambda r: (_bytes_per_pair(r), _bytes(_nce(r, "naive", 16384)),
                     _bytes_per_pair(r) * 65536**2 / 2**30)),
    Claim(CN, "contrastive.json",
          "The naive loss needs about {:.0f} bytes per pair: {} at $N = 16384$. Tiled, the same "
          "loss and gradients take {}, **{:.1%}** of that.",
          lambda r: (_bytes_per_pair(r), _bytes(_nce(r, "naive", 16384)),
                     _bytes(_nce(r, "softmetrics_tiled", 16384)),
                     _nce(r, "softmetrics_tiled", 16384) / _nce(r, "naive", 16384))),
    Claim(CN, "contrastive.json",
          "the peak extra memory grows by {s[slope]:.2f} $N \\times D$ float32 buffers per "
          "added $N \\times D$ (from {p1} at $N = {s[n1]}$ to {p2} at {s[n2]}), the two "
          "gradient buffers, on top of about {mb:.0f} MB of tiles and workspace. At "
          "$N = 1{{,}}048{{,}}576$, $D = 512$ one such buffer is 2 GiB, so that is "
          "${s[slope]:.2f} \\times 2$ GiB $+$ {mb:.0f} MB $\\approx {s[extra]:.2f}$ GiB of "
          "extra memory, and {f32:.2f} GiB with the float32 embeddings themselves. With "
          "bfloat16 embeddings (2 GiB) the float32 gradient buffers are cast and released "
          "one at a time, for an estimated peak of about {bf16:.2f} GiB extra and {bf16all:.2f} "
          "GiB in all.",
          lambda r: (lambda s: dict(s=s, p1=_bytes(s["p1"]), p2=_bytes(s["p2"]),
                                    mb=s["fixed"] / 1e6, f32=s["extra"] + 4,
                                    bf16=s["extra"] + 1, bf16all=s["extra"] + 3))(_scale(r))),
    Claim(CN, "contrastive.json",
          "Tiled is {:.2f}x the naive time at $N = 16384$ and {:.2f}x at 4096",
          lambda r: tuple(_nce(r, "softmetrics_tiled", n, "median_s")
                          / _nce(r, "naive", n, "median_s") for n in (16384, 4096))),
    Claim(CN, "contrastive.json",
          "batch: {} at 128 pairs and {} at 256 ({:.0f} times slower than the naive NT-Xent "
          "there)",
          lambda r: (_bytes(_nce(r, "pml_ntxent", 128)), _bytes(_nce(r, "pml_ntxent", 256)),
                     _nce(r, "pml_ntxent", 256, "median_s")
                     / _nce(r, "naive_ntxent", 256, "median_s"))),
    Claim(CN, "contrastive.json",
          "tiled takes {:.1%} of the naive memory at 4096 pairs and {:.2f}x its time.",
          lambda r: (_nce(r, "softmetrics_ntxent_tiled", 4096) / _nce(r, "naive_ntxent", 4096),
                     _nce(r, "softmetrics_ntxent_tiled", 4096, "median_s")
                     / _nce(r, "naive_ntxent", 4096, "median_s"))),
    Claim(CN, "contrastive.json", "Each point averages {} queries.",
          lambda r: (r["mutual_information"]["queries_per_point"],)),
]

def _seg(rec: dict, key: str, batch: str) -> dict:
    return next(r for r in rec["rows"] if r["key"] == key and r["batch"] == batch)


# the losses whose matched calls compute everything in float64 on both sides
SEG_FLOAT64 = {"dice", "dice_samplewise", "jaccard", "tversky", "focal_tversky_binary",
               "class_weights", "no_background", "absent_include", "absent_present_only"}


def _seg_float64_diff(rec: dict) -> float:
    return max(r[k] for r in rec["rows"] if r["key"] in SEG_FLOAT64
               for k in ("smp_abs_diff", "monai_abs_diff", "smp_grad_max_abs_diff",
                         "monai_grad_max_abs_diff") if k in r)


SEGMENTATION = [
    Claim("segmentation.md", "segmentation_peers.json",
          "the matched calls of smp and MONAI's Dice, Jaccard and Tversky losses agree with "
          "softmetrics to ${} \\times 10^{{{}}}$ in value and gradient",
          lambda r: _power_of_ten(_seg_float64_diff(r))),
    Claim("segmentation.md", "segmentation_peers.json",
          "Over all matched calls the largest difference is ${} \\times 10^{{{}}}$ in value "
          "and ${} \\times 10^{{{}}}$ in gradient",
          lambda r: (*_power_of_ten(r["max_matched_abs_diff"]["value"]),
                     *_power_of_ten(r["max_matched_abs_diff"]["gradient"]))),
    Claim("segmentation.md", "segmentation_peers.json",
          "On the batch with an absent class softmetrics' default Dice loss is {:.4f}, "
          "MONAI's default {:.4f} and smp's default {:.4f}; the exact per-image mean IoU is "
          "{:.4f}, and MONAI's default `MeanIoU` reports {:.4f}.",
          lambda r: (_seg(r, "absent_default", "absent")["softmetrics"],
                     _seg(r, "absent_default", "absent")["monai_default"],
                     _seg(r, "absent_default", "absent")["smp_default"],
                     _seg(r, "miou_skip", "absent")["softmetrics"],
                     _seg(r, "miou_skip", "absent")["monai_default"])),
]


def _g2p_mean(rec: dict, variant: str, metric: str) -> float:
    runs = rec["pretrained"] if variant == "pretrained" else rec["variants"][variant]
    return statistics.mean(runs[metric])


def _g2p_diff(rec: dict, variant: str, metric: str) -> float:
    return rec["comparisons"][variant][metric]["mean_diff"]


CE_PAGE = "benchmarks/compare_ce.md"
G2P = [
    Claim(CE_PAGE, "compare_ce_g2p.json",
          "fine-tuning with cross-entropy alone took the pretrained networks from {:.2f} to "
          "{:.2f} test BLEU (PER from {:.2f}% to {:.2f}%, WER from {:.2f}% to {:.2f}%).",
          lambda r: tuple(_g2p_mean(r, v, m) for m in ("bleu", "per", "wer")
                          for v in ("pretrained", "ce"))),
    Claim(CE_PAGE, "compare_ce_g2p.json",
          "Mixing in `ExpectedBLEULoss` moved test BLEU by {:+.2f} and WER by {:+.2f} points, "
          "mixing in `SoftBLEULoss` by {:+.2f} BLEU and {:+.2f} WER points; neither moved PER "
          "by more than {:.2f} points.",
          lambda r: (_g2p_diff(r, "expected_bleu", "bleu"), _g2p_diff(r, "expected_bleu", "wer"),
                     _g2p_diff(r, "soft_bleu", "bleu"), _g2p_diff(r, "soft_bleu", "wer"),
                     max(abs(_g2p_diff(r, v, "per")) for v in ("expected_bleu", "soft_bleu")))),
    Claim(CE_PAGE, "compare_ce_g2p.json",
          "The record is the full size (`--full`): {} seeds, {:,} training words, {} "
          "pretraining and {} fine-tuning steps of batch {}, {:.1f} minutes on the 2-core "
          "machine.",
          lambda r: (len(r["seeds"]), r["settings"]["train"], r["settings"]["pretrain_steps"],
                     r["settings"]["finetune_steps"], r["settings"]["batch"],
                     r["run"]["seconds"] / 60)),
    Claim(CE_PAGE, "compare_ce_g2p.json",
          "{} of the {} differences are wins (higher BLEU or lower error rates), but only "
          "one holds under Holm's correction over the six: `SoftBLEULoss` lowering PER by "
          "{:+.2f} points [{:+.2f}, {:+.2f}].",
          lambda r: (lambda cs: (
              sum(c["verdict"] == "win" for c in cs), len(cs),
              *((lambda c: (c["mean_diff"], c["ci_low"], c["ci_high"]))(
                  r["comparisons"]["soft_bleu"]["per"])
                if [c["holm"] for c in cs].count(True) == 1
                and r["comparisons"]["soft_bleu"]["per"]["holm"] else (math.nan,) * 3)))(
              [c for v in r["comparisons"].values() for c in v.values()])),
    Claim(CE_PAGE, "compare_ce_g2p.json",
          "helped grapheme-to-phoneme conversion a little: {:+.2f} and {:+.2f} test BLEU, "
          "against the {:.1f} points that fine-tuning itself gained.",
          lambda r: (_g2p_diff(r, "expected_bleu", "bleu"), _g2p_diff(r, "soft_bleu", "bleu"),
                     _g2p_mean(r, "ce", "bleu") - _g2p_mean(r, "pretrained", "bleu"))),
    Claim(CE_PAGE, "compare_ce_g2p.json",
          "one word of the {:,} test words moves WER by {:.1f} points",
          lambda r: (r["settings"]["test"], 100 / r["settings"]["test"])),
    Claim(CE_PAGE, "compare_ce_g2p.json",
          "the difference here is {:+.2f} BLEU [{:+.2f}, {:+.2f}]",
          lambda r: tuple(r["comparisons"]["expected_bleu"]["bleu"][k]
                          for k in ("mean_diff", "ci_low", "ci_high"))),
]


def _mean(rec: dict, key: str, metric: str) -> float:
    return statistics.mean(rec["losses"][key]["metrics"][metric])


def _vs(rec: dict, key: str, metric: str, base: str) -> tuple:
    """A paired comparison as the pages write it: difference, interval, verdict."""
    c = rec["comparisons"][base][key][metric]
    return c["mean_diff"], c["ci_low"], c["ci_high"], c["verdict"]


CE = "benchmarks/compare_ce.md"
SEG, ML = "compare_ce_segmentation.json", "compare_ce_multilabel.json"
PURE = ("jaccard", "dice", "tversky")
CANVAS = [
    Claim(CE, SEG, "the recorded `--full` run, {} seeds", lambda r: (len(r["seeds"]),)),
    Claim(CE, SEG,
          "Fine-tuned for {} steps from the same cross-entropy network (test mIoU {:.3f} "
          "before fine-tuning), CE + w · SoftDice was ahead of cross-entropy on mIoU ({:+.3f} "
          "[{:+.3f}, {:+.3f}], a {}), macro Dice ({:+.3f} [{:+.3f}, {:+.3f}], a {}) and the "
          "IoU of the small, rare digits ({:+.3f} [{:+.3f}, {:+.3f}], a {}: {:.3f} against "
          "{:.3f}), and it is a {} on pixel accuracy ({:+.3f} [{:+.3f}, {:+.3f}]).",
          lambda r: (r["settings"]["steps"], statistics.mean(r["pretrained"]["miou"]),
                     *_vs(r, "ce_dice", "miou", "ce"), *_vs(r, "ce_dice", "dice", "ce"),
                     *_vs(r, "ce_dice", "rare_iou", "ce"), _mean(r, "ce_dice", "rare_iou"),
                     _mean(r, "ce", "rare_iou"), _vs(r, "ce_dice", "pixel_acc", "ce")[3],
                     *_vs(r, "ce_dice", "pixel_acc", "ce")[:3])),
    Claim(CE, SEG,
          "Neither win holds under Holm's correction over the table's {} comparisons",
          lambda r: (lambda wins: (
              sum(len(v) for v in r["comparisons"]["ce"].values())
              if all(c["verdict"] == "win" and not c["holm"] for c in wins) else "some",))(
              [r["comparisons"]["ce"]["ce_dice"][m] for m in ("miou", "dice")])),
    Claim(CE, SEG,
          "The Lovász loss alone was ahead of cross-entropy on the rare digits' IoU ({:+.3f} "
          "[{:+.3f}, {:+.3f}], a {}) and on mIoU ({:+.3f} [{:+.3f}, {:+.3f}], a {}).",
          lambda r: (*_vs(r, "lovasz", "rare_iou", "ce"), *_vs(r, "lovasz", "miou", "ce"))),
    Claim(CE, SEG,
          "SoftJaccard, SoftDice and SoftTversky each {} cross-entropy on their own metric "
          "({:+.3f}, {:+.3f} and {:+.3f}), SoftDice and SoftTversky {} a little pixel "
          "accuracy ({:+.3f} [{:+.3f}, {:+.3f}] and {:+.3f} [{:+.3f}, {:+.3f}]), and none of "
          "the three moved the rare digits' IoU ({:+.3f}, {:+.3f} and {:+.3f}, {}),",
          lambda r: ("tie with" if all(_vs(r, k, r["losses"][k]["metric"], "ce")[3] == "tie"
                                       for k in PURE) else "do not all tie with",
                     *(_vs(r, k, r["losses"][k]["metric"], "ce")[0] for k in PURE),
                     "lose" if all(_vs(r, k, "pixel_acc", "ce")[3] == "loss"
                                   for k in ("dice", "tversky")) else "do not both lose",
                     *(v for k in ("dice", "tversky") for v in _vs(r, k, "pixel_acc", "ce")[:3]),
                     *(_vs(r, k, "rare_iou", "ce")[0] for k in PURE),
                     "ties" if all(_vs(r, k, "rare_iou", "ce")[3] == "tie" for k in PURE)
                     else "not all ties")),
    Claim(CE, SEG,
          "The rare digits' IoU varies widely between seeds ({:.3f} ± {:.3f} for "
          "cross-entropy)",
          # the generated tables' own mean and t-interval
          lambda r: _script("_common").mean_ci(r["losses"]["ce"]["metrics"]["rare_iou"])),
    Claim(CE, ML,
          "`SoftF1Loss` (macro) raised test macro F1 from BCE's {:.3f} to {:.3f} ({:+.3f} "
          "[{:+.3f}, {:+.3f}], a {} over {} seeds, which {} under Holm's correction), but BCE "
          "with one threshold per label tuned on validation reached {:.3f} (a {} over BCE "
          "that {} under Holm's correction too), and against it `SoftF1Loss` (macro) is a {} "
          "({:+.3f} [{:+.3f}, {:+.3f}]).",
          lambda r: (_mean(r, "bce", "macro_f1"), _mean(r, "f1_macro", "macro_f1"),
                     *_vs(r, "f1_macro", "macro_f1", "bce"), len(r["seeds"]),
                     _holds(r["comparisons"]["bce"]["f1_macro"]["macro_f1"]),
                     _mean(r, "bce_thr", "macro_f1"),
                     _vs(r, "bce_thr", "macro_f1", "bce")[3],
                     _holds(r["comparisons"]["bce"]["bce_thr"]["macro_f1"]),
                     _vs(r, "f1_macro", "macro_f1", "bce_thr")[3],
                     *_vs(r, "f1_macro", "macro_f1", "bce_thr")[:3])),
    Claim(CE, ML,
          "BCE + w · `SoftF1Loss` gained {:+.3f} macro F1 over BCE and is a {} against "
          "the tuned thresholds ({:+.3f} [{:+.3f}, {:+.3f}]); `SoftF1Loss` (micro) is a {} "
          "over BCE on micro F1 ({:+.3f} [{:+.3f}, {:+.3f}]).",
          lambda r: (_vs(r, "bce_f1", "macro_f1", "bce")[0],
                     _vs(r, "bce_f1", "macro_f1", "bce_thr")[3],
                     *_vs(r, "bce_f1", "macro_f1", "bce_thr")[:3],
                     _vs(r, "f1_micro", "micro_f1", "bce")[3],
                     *_vs(r, "f1_micro", "micro_f1", "bce")[:3])),
    Claim(CE, ML,
          "Thresholds tuned for each label's own F1 lower micro F1 ({:.3f} against BCE's "
          "{:.3f} at probability 0.5), and `SoftF1Loss` (micro) was ahead of them on micro F1 "
          "({:+.3f} [{:+.3f}, {:+.3f}], a {}, though {} Holm's correction)",
          lambda r: (_mean(r, "bce_thr", "micro_f1"), _mean(r, "bce", "micro_f1"),
                     *_vs(r, "f1_micro", "micro_f1", "bce_thr"),
                     "under" if r["comparisons"]["bce_thr"]["f1_micro"]["micro_f1"]["holm"]
                     else "not under")),
    Claim(CE, ML, "(test macro F1 {:.3f} after the shared BCE pretraining)",
          lambda r: (statistics.mean(r["pretrained"]["macro_f1"]),)),
    Claim(CE, ML, "the recorded `--full` run, {} seeds", lambda r: (len(r["seeds"]),)),
]

def _holds(c: dict) -> str:
    return "holds" if c["holm"] else "does not hold"


def _acc(method: str, fraction: str) -> Callable[[dict], float]:
    return lambda rec: statistics.mean(rec["accuracy"][method][fraction])


def _vs_ce(method: str, fraction: str) -> Callable[[dict], tuple]:
    """The paired difference to CE from scratch, its interval and verdict."""
    return lambda rec: (lambda c: (c["mean_diff"], c["ci_low"], c["ci_high"],
                                   c["verdict"]))(rec["comparisons"][method][fraction])


CC = "benchmarks/compare_ce.md"
PT = "compare_ce_pretraining.json"
PRETRAINING = [
    Claim(CC, PT,
          "In the recorded run ({} seeds) a linear probe on the encoder pre-trained with "
          "NT-Xent reached a test accuracy of {:.3f} with {} labels and {:.3f} with {}; the "
          "same encoder trained from scratch with cross-entropy on the same labels reached "
          "{:.3f} and {:.3f}.",
          lambda r: (len(r["seeds"]), _acc("pretrained", "0.01")(r), r["labels"]["0.01"],
                     _acc("pretrained", "0.1")(r), r["labels"]["0.1"],
                     _acc("ce", "0.01")(r), _acc("ce", "0.1")(r))),
    Claim(CC, PT,
          "Paired by seed, pre-training minus cross-entropy is {:+.3f} (95% t interval "
          "[{:+.3f}, {:+.3f}]: {}) with 1% of the labels and {:+.3f} ([{:+.3f}, "
          "{:+.3f}]: {}) with 10%.",
          lambda r: (*_vs_ce("pretrained", "0.01")(r), *_vs_ce("pretrained", "0.1")(r))),
    Claim(CC, PT,
          "The probe on the encoder at its random initialisation reached {:.3f} and {:.3f} "
          "({:+.3f} and {:+.3f} against cross-entropy: {} and {}, both {} Holm's correction)",
          lambda r: (_acc("random", "0.01")(r), _acc("random", "0.1")(r),
                     r["comparisons"]["random"]["0.01"]["mean_diff"],
                     r["comparisons"]["random"]["0.1"]["mean_diff"],
                     r["comparisons"]["random"]["0.01"]["verdict"],
                     r["comparisons"]["random"]["0.1"]["verdict"],
                     "under" if all(c["holm"] for c in r["comparisons"]["random"].values())
                     else "not all under")),
    Claim(CC, PT,
          "The InfoNCE bound on the mutual information between two views of a held-out "
          "digit, $\\log N - \\mathcal{{L}}$ with $N = {}$, rose from {:.3f} nats at "
          "initialisation to {:.3f} nats after pre-training (its ceiling is "
          "$\\log N = {:.2f}$).",
          lambda r: (round(math.exp(r["log_n"])),
                     statistics.mean(r["mi_bound_random"]), statistics.mean(r["mi_bound"]),
                     r["log_n"])),
    Claim(CC, PT,
          "Pre-training was ahead in {} of the {} seeds with {} labels; with {} labels "
          "cross-entropy was ahead in {} of the {} seeds, but by little next to what seeds "
          "that re-split one pool of digits vary (p = {:.3f};",
          lambda r: (lambda lo, hi: (
              sum(d > 0 for d in lo["diffs"]), len(lo["diffs"]), r["labels"]["0.01"],
              r["labels"]["0.1"], sum(d < 0 for d in hi["diffs"]), len(hi["diffs"]),
              hi["p"]))(r["comparisons"]["pretrained"]["0.01"],
                        r["comparisons"]["pretrained"]["0.1"])),
    Claim(CC, PT,
          "the probe's advantage over cross-entropy from scratch fell from {:+.3f} with 1% of "
          "the labels to {:+.3f} with 10%,",
          lambda r: (r["comparisons"]["pretrained"]["0.01"]["mean_diff"],
                     r["comparisons"]["pretrained"]["0.1"]["mean_diff"])),
    Claim(CC, PT,
          "The record is the full size (`--full`): {} seeds, {:,} pre-training steps and {} "
          "cross-entropy steps, {:.0f} minutes on a 2-core machine shared with other work.",
          lambda r: (len(r["seeds"]), r["settings"]["pretrain_steps"],
                     r["settings"]["ce_steps"], r["run"]["seconds"] / 60)),
]



CD = "compiled.json"
COMPILED_SOFT = ["SoftF1Loss", "SoftAccuracyLoss", "SoftMCCLoss", "SoftJaccardLoss",
                 "SoftCohenKappaLoss"]


def _compiled(rec: dict, names: list[str], key: str = "compiled", c: int | None = None,
              n: int | None = None) -> list[float]:
    """The ratios to eager cross-entropy of `names` compiled (`key="eager"`: eagerly)."""
    return [r[key]["ratio"] for r in rec["rows"] if r["loss"] in names
            and r["mode"] == "default" and c in (None, r["c"]) and n in (None, r["n"])]


def _over_compiled_ce(rec: dict, n: int, c: int) -> list[float]:
    (ce,) = _compiled(rec, ["F.cross_entropy"], c=c, n=n)
    return [x / ce for x in _compiled(rec, COMPILED_SOFT, c=c, n=n)]


COMPILED = [
    Claim(SP, CD, "`python benchmarks/compiled.py --record --threads {}` asks what",
          lambda r: (r["machine"]["torch_threads"],)),
    Claim(SP, CD, "as a multiple of **eager** `F.cross_entropy` on the same logits in {} "
          "paired rounds", lambda r: (r["rows"][0]["rounds"],)),
    Claim(SP, CD,
          "At (4096, 10) the five soft losses took {:.2f}x to {:.2f}x of eager cross-entropy "
          "compiled, against {:.2f}x to {:.2f}x eager; at (65536, 10) {:.2f}x to {:.2f}x, "
          "against {:.2f}x to {:.2f}x. Compiled cross-entropy itself took {:.2f}x of its "
          "eager self at (4096, 10):",
          lambda r: (*_span(_compiled(r, COMPILED_SOFT, c=10, n=4096)),
                     *_span(_compiled(r, COMPILED_SOFT, "eager", c=10, n=4096)),
                     *_span(_compiled(r, COMPILED_SOFT, c=10, n=65536)),
                     *_span(_compiled(r, COMPILED_SOFT, "eager", c=10, n=65536)),
                     *_compiled(r, ["F.cross_entropy"], c=10, n=4096))),
    Claim(SP, CD, "the compiled soft losses are within {:.2f}x to {:.2f}x of compiled "
          "cross-entropy.", lambda r: _span(_over_compiled_ce(r, 4096, 10))),
    Claim(SP, CD,
          "At C = 1000 the compiled losses took {:.2f}x to {:.2f}x of cross-entropy, where "
          "eager mode's hand-written backwards, blocked so that each block stays in cache, "
          "took {:.2f}x to {:.2f}x.",
          lambda r: (*_span(_compiled(r, COMPILED_SOFT, c=1000)),
                     *_span(_compiled(r, COMPILED_SOFT, "eager", c=1000)))),
    Claim(SP, CD, "**Compiling took {:.0f} to {:.0f} s per row**",
          lambda r: _span([x["compile_s"] for x in r["rows"]])),
    Claim("benchmarks/gpu.md", CD,
          "compiling brought `SoftF1Loss` from {:.2f}x to {:.2f}x of eager cross-entropy at "
          "(4096, 10), and left every soft loss slower than eager mode at C = 1000",
          lambda r: (*_compiled(r, ["SoftF1Loss"], "eager", c=10, n=4096),
                     *_compiled(r, ["SoftF1Loss"], c=10, n=4096))),
    Claim("index.md", CD, "compiled with `torch.compile`, they took {:.2f}x to {:.2f}x with "
          "10 classes", lambda r: _span(_compiled(r, COMPILED_SOFT, c=10))),
    Claim("benchmarks/gpu.md", CD,
          "Compiling one loss's forward and backward took {:.0f} to {:.0f} s per row on the "
          "2-core CPU", lambda r: _span([x["compile_s"] for x in r["rows"]])),
]


SEG_SPEED_RECORD = "segmentation_speed.json"
TVERSKY_KEYS = ("dice", "jaccard", "tversky")


def _seg_ratios(rec: dict, column: str, keys=TVERSKY_KEYS) -> list[float]:
    return [r["ratio"] for r in rec["rows"] if r["column"] == column and r["key"] in keys]


def _validation_cost(rec: dict) -> list[float]:
    """Per row of the Tversky losses and generalized Dice: checked minus unchecked."""
    by = {(r["key"], r["batch"], r["column"]): r["ratio"] for r in rec["rows"]}
    return [by[k, b, "softmetrics"] - by[k, b, "unchecked"] for k, b, c in by
            if c == "softmetrics" and k != "lovasz"]


SEGMENTATION_SPEED = [
    Claim(SP, SEG_SPEED_RECORD,
          "Without validation softmetrics' losses took {:.2f}x to {:.2f}x the time of "
          "cross-entropy, smp's {:.2f}x to {:.2f}x and MONAI's {:.2f}x to {:.2f}x.",
          lambda r: (*_span(_seg_ratios(r, "unchecked")), *_span(_seg_ratios(r, "smp")),
                     *_span(_seg_ratios(r, "monai")))),
    Claim(SP, SEG_SPEED_RECORD,
          "`validate_args=True` changed the time of those losses by {:.2f}x to {:.2f}x of a "
          "cross-entropy step", lambda r: _span(_validation_cost(r))),
    Claim(SP, SEG_SPEED_RECORD,
          "softmetrics' Lovász loss took {:.2f}x and {:.2f}x the time of cross-entropy (plain "
          "and void), smp's {:.2f}x and {:.2f}x",
          lambda r: (*_seg_ratios(r, "softmetrics", ("lovasz",)),
                     *_seg_ratios(r, "smp", ("lovasz",)))),
]

CLAIMS = [*BATCH_BIAS, *TEXT, *RANKING, *SPEED, *COMPILED, *INDEX, *CONTRASTIVE,
          *SEGMENTATION, *G2P, *CANVAS, *PRETRAINING, *EXPECTED_BLEU_ALPHA,
          *SEGMENTATION_SPEED]


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: f"{c.page}: {c.text[:40]}")
def test_the_page_quotes_its_record(claim):
    expected = claim.expected()
    assert expected in _text(DOCS / claim.page), (
        f"{claim.page} should say, from {claim.record}:\n{expected}")


# ---------------------------------------------------------------------------------------
# no figure in a passage about measurements without a claim


@dataclass(frozen=True)
class Section:
    """A passage of `page` that reports measurements, from the first `start` to the next
    `end` after it (the page's end when `end` is None). Every number in it must lie inside a
    claim of the page, or be one of `allowed`: settings and definitions that no run
    measures (sizes, constants, the arithmetic of a stated formula)."""

    page: str
    start: str
    end: str | None
    allowed: frozenset[str]


# a number as the pages write it: 2^{22}, 1,500, 0.058, 16; with a ratio's "x" after it
NUMBER = re.compile(r"(?<![\w.^{-])(\d+\^\{-?\d+\}|\d+\^\d+|\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
                    r"(?=x\b|[^\w]|$)(?!-D\b)")  # "1-D" names a shape, not a figure
# parts of a page that hold no prose figure: code, link targets, generated blocks, includes
UNQUOTED = re.compile(r"```.*?```|`[^`]*`|\]\([^)]*\)|<!-- bench:start -->.*?"
                      r"<!-- bench:end -->|--8<-- \"[^\"]*\"")


def unclaimed_numbers(section: Section, claims: list[Claim]) -> list[str]:
    text = _text(DOCS / section.page)
    begin = text.index(section.start)
    stop = len(text) if section.end is None else text.index(section.end, begin)
    covered = [m.span() for m in UNQUOTED.finditer(text)]
    for claim in claims:
        if claim.page == section.page:
            expected = claim.expected()
            covered += [(m.start(), m.start() + len(expected))
                        for m in re.finditer(re.escape(expected), text)]
    return [m.group(1) for m in NUMBER.finditer(text, begin, stop)
            if not any(a <= m.start() < b for a, b in covered)
            and m.group(1) not in section.allowed]


SECTIONS = [
    Section("segmentation.md", "## Compared with smp and MONAI", None, frozenset({
        "0", "1",  # a loss of 0 for an absent class, "almost 1", "IoU 0", "one class"
        "1.6", "2.8",  # MONAI 1.6.1, the first with ignore_index, and the torch it needs
    })),
    Section(BB, "# Mini-batch bias", None, frozenset({
        "1",  # 1/(1-m), the momentum window
        "4", "60", "20",  # features of the data set, and its split (the comparison's page)
        "200",  # the estimate's stream of batches (a constant of the script)
        "0.5",  # the decision threshold of the exact F1
        "0",  # "the F1 of such a batch is 0", "gap 0"
        "16", "64",  # batch sizes named in the text
    })),
    Section("text.md", "## Throughput", "![Sentence BLEU throughput]", frozenset({
        "70",  # the share of tokens the references keep (a constant of the script)
        "10^{-9}",  # the tolerance of the check against sacrebleu
        "4096", "16384",  # the batch sizes of the CUDA rows (the script's defaults)
    })),
    Section("text.md", "**What the record shows.**", "**Guidance.**", frozenset({
        "1", "0.005",  # the alphas the table shows
        "10^{-6}",  # a bound on the worked example's weights
        "2",  # "the two shortest candidates"
    })),
    Section("index.md", "**Timed against cross-entropy.**", "3. **Honest.**",
            frozenset()),
    Section(SP, "## Reading the table", None, frozenset({
        "1000", "10", "4096",  # the sizes of the table (C and N)
        "16",  # CPU_SOFTMAX_MIN_WIDTH, the padding width
        "2^16", "256",  # SMALL_COUNTS_ENTRIES and its KiB of float32
        "65536",  # the table's other N
        "2^17", "512", "0",  # CPU_BLOCK_ENTRIES, its KiB, and "0 gives one block"
        "1",  # "below 1x"
        "4",  # KiB per page
        "0.1",  # the label smoothing of the soft targets' rows (speed.SMOOTHING)
        "501",  # CPU blocks of (65536, 1000) logits: 65536 / (2^17 // 1000) rows
        "8", "1024", "6",  # AVX2's float32 lanes, CPU_SOFTMAX_PAD_ROWS, _MAX_PADDING
        "2", "2^19",  # a core's 2 MiB of L2 cache; the block size before this record
        "21", "128",  # the segmentation batch: classes and pixels (segmentation_speed.SIZE)
    })),
    Section(CN, "## Memory: InfoNCE without", "## The mutual-information bound", frozenset({
        "2^{24}", "2^{22}", "64", "16",  # tile sizes (softmetrics._tuning) and their MiB
        "4096", "65536",  # sizes named in the text
        "2048",  # the automatic tile on a CPU, 2048 x 2048
        "4", "3",  # matrix products per tile, tiled and naive
        "10^{-5}",  # the test tolerance of tiled against untiled
        "2410.17243", "2024",  # the Inf-CL citation
        "128", "0.07", "256",  # D, the temperature and the fixed tile of the benchmark
        "2^{20}", "512",  # the target size of the projection
        "262144", "048", "576",  # the sizes gpu.sh measures ($1{,}048{,}576$)
        "1",  # "1 runs"
        "8",  # the 8 GB target
        "2.4",  # the torch version with custom operators
    })),
    Section(CE_PAGE, "## Sequence task: grapheme-to-phoneme", "<!-- compare_ce g2p: begin",
            frozenset({
                "2",  # a 2-core machine; 2 configurations per variant (the design's budget)
                "5",  # the seeds of the full size
                "150", "20",  # the default size's pretraining and fine-tuning steps
                "39",  # the phonemes of the dictionary
                "4",  # candidates sampled per word
                "2015", "2016",  # the citations
            })),
    Section(CE_PAGE, "<!-- compare_ce g2p: end -->", "## Segmentation task", frozenset({
        "2018", "14", "2015",  # the citations and IWSLT'14
        "1", "31.8", "32.9",  # Edunov et al.'s figures (1 - BLEU: the risk's formula)
        "7",  # Yao and Zweig's PER
        "2",  # configurations per variant
    })),
    Section(CC, "## Contrastive pre-training",
            "<!-- compare_ce pretraining: begin", frozenset({
                "2018", "2020",  # the citations' years
                "1", "10",  # the label fractions (%), settings
                "30", "300",  # the labeled images of those fractions, settings
                "2", "600",  # the default size: seeds, pre-training (and 300 CE) steps
                "25", "0.2", "0.5", "15", "0.15", "0.3",  # the two sides' views, settings
                "0.05", "0.025", "0.1",  # the temperatures tried on validation
                "8",  # SimCLR's Figure 8
                "150", "100",  # the earlier version's steps (and its temperature 0.5)
            })),
    Section(CC, "**Against the published claims.** SimCLR", "## Limits of this benchmark",
            frozenset({
        "2018", "2020",  # the citations' years
        "76.5", "4", "50", "85.8", "1", "10", "100", "2", "5",  # the cited papers' figures
        "14",  # the image side, a setting
        "128",  # pairs per pre-training batch, a setting
        "5,000", "3,000",  # the digits of the data set, and of its training split
        "30", "300",  # the labeled images of the 1% and 10% subsets, settings
    })),
    Section("ranking.md", "A random ranking now scores", "Per-frame cAP is", frozenset({
        "0.5",  # the value a random ranking approaches
    })),
    Section("ranking.md", "## Memory and speed", "## Data-parallel training", frozenset({
        "40",  # GB: 4 bytes x 100,000^2, arithmetic
        "100", "000",  # $M = 100{,}000$, the size of the example
        "4", "16",  # bytes per pair of one matrix, and of the benchmark's estimate; 4 MiB tiles
        "2^{20}", "2^{24}",  # pairs per tile (softmetrics._tuning)
        "2",  # the M^2 pairs
        "10", "0.1",  # the benchmark's share of positives and its temperature
        "9",  # % of the M^2 pairs a column with a tenth positive needs: 0.1 x 0.9
        "3",  # relevant items per retrieval query (classes of 4, the query ignored)
        "2.4",  # the torch release with torch.library.custom_op
    })),
]


# the canvas tasks' settings, as their method paragraphs state them
CANVAS_SETTINGS = frozenset({"0", "1", "2", "3", "4", "5", "8", "10", "11", "15", "16", "18",
                             "30", "48", "80", "400", "0.3", "0.7", "0.5", "2018", "2021"})
SECTIONS += [
    Section(CE, "## Segmentation task", "<!-- compare_ce segmentation: begin",
            CANVAS_SETTINGS),
    Section(CE, "<!-- compare_ce segmentation: end -->", "<!-- compare_ce multilabel: begin",
            CANVAS_SETTINGS),
    Section(CE, "<!-- compare_ce multilabel: end -->", "## Contrastive pre-training",
            CANVAS_SETTINGS),
]


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: f"{s.page}: {s.start[:30]}")
def test_every_figure_of_a_measurement_passage_is_a_claim(section):
    numbers = unclaimed_numbers(section, CLAIMS)
    assert not numbers, (f"{section.page} quotes figures that no claim of this test ties to "
                         f"its record: {numbers}")
