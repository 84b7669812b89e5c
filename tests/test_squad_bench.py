"""`qa bench` answer figures on the committed SQuAD slice, recounted from the per-question records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.answer_metrics import roc_auc

SLICE = Path(__file__).resolve().parent / "data" / "squad_slice"


def _gold(path: Path) -> dict[str, dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {q["id"]: q for q in (json.loads(line) for line in lines if line.strip())}


def _covers(gold: dict, sentence: dict | None) -> bool:
    """The sentence is from the question's article and its char range holds a gold answer span."""
    return (
        sentence is not None
        and sentence["source"] == gold["article"]
        and any(sentence["char_start"] <= s and e <= sentence["char_end"] for s, e in gold["answer_spans"])
    )


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags)


@pytest.mark.slow
def test_answer_figures_on_the_squad_slice_match_a_recount(tmp_path):
    from qa.cli import cli

    out = tmp_path / "report.json"
    args = ["bench", str(SLICE / "questions.jsonl"), "--corpus", str(SLICE / "corpus")]
    args += ["--unanswerable", str(SLICE / "offcorpus.jsonl"), "--modes", "hybrid", "--json", str(out), "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Flagged" in result.output and "Refused" in result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    (mode,) = report["modes"]
    records = mode["questions"]
    gold = _gold(SLICE / "questions.jsonl")
    off = _gold(SLICE / "offcorpus.jsonl")
    assert len(records) == len(gold) + len(off) == 70
    assert {r["id"] for r in records if r["from_unanswerable_file"]} == set(off)

    # each record's verdict from the gold spans, not from the bench's own code
    answerable = [r for r in records if not r["from_unanswerable_file"] and gold[r["id"]]["answer_spans"]]
    adversarial = [r for r in records if not r["from_unanswerable_file"] and not gold[r["id"]]["answer_spans"]]
    offcorpus = [r for r in records if r["from_unanswerable_file"]]
    assert (len(answerable), len(adversarial), len(offcorpus)) == (30, 30, 10)
    for r in records:
        assert r["answerable"] == (r in answerable)
        assert (r["answer_sentence"] is not None) == r["given"]
        expected_right = r["given"] and r in answerable and _covers(gold[r["id"]], r["answer_sentence"])
        assert r["answer_right"] == expected_right, r

    right = _share([_covers(gold[r["id"]], r["answer_sentence"]) for r in answerable])
    refused = _share([not r["given"] for r in answerable])
    flagged_adv = _share([not r["given"] for r in adversarial])
    flagged_off = _share([not r["given"] for r in offcorpus])
    flagged_all = _share([not r["given"] for r in adversarial + offcorpus])
    auc_adv = roc_auc([r["confidence"] for r in answerable], [r["confidence"] for r in adversarial])
    overall = _share(
        [_covers(gold[r["id"]], r["answer_sentence"]) for r in answerable]
        + [not r["given"] for r in adversarial + offcorpus]
    )

    groups = mode["answers"]
    assert set(groups) == {"all", "file", "extra"}
    for group in groups.values():
        assert group["n_answerable"] == 30
        assert group["answer_right"] == pytest.approx(right, abs=1e-6)
        assert group["answerable_refused"] == pytest.approx(refused, abs=1e-6)
    assert groups["all"]["unanswerable_flagged"] == pytest.approx(flagged_all, abs=1e-6)
    assert groups["file"]["unanswerable_flagged"] == pytest.approx(flagged_adv, abs=1e-6)
    assert groups["extra"]["unanswerable_flagged"] == pytest.approx(flagged_off, abs=1e-6)
    assert groups["file"]["confidence_auc"] == pytest.approx(auc_adv, abs=1e-6)
    assert groups["all"]["overall_correct"] == pytest.approx(overall, abs=1e-6)
    # the retrieval finds most answers on three articles, so a bench that scores nothing right is broken
    assert right >= 0.5 and mode["metrics"]["hit@5"] >= 0.8
