"""Train the answer model: a 3-layer cross-encoder (question, sentence) -> logit that the sentence answers,
against a fixed "no answer" logit of 0, fine-tuned from the bundled all-MiniLM-L6-v2 on SQuAD's
training-side articles; export it to int8 ONNX into qa/answer_model/, then calibrate (training/calibrate.py).

    .venv/bin/python training/train_answer_model.py            # mine, train, export, calibrate, model card

Stages can be run alone: --stage mine|train|export|calibrate. Everything is seeded (SEED).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.squad_data import DEFAULT_DATA, ROOT, Corpus, Miner, load_questions, split  # noqa: E402

SEED = 13
LAYERS = 3
MAX_LENGTH = 128
GROUP_SIZE = 7
EPOCHS = 1
TRAIN_GROUPS = 3200
"""Groups per run, sampled with SEED: what one pass over two shared cores does in ~25 minutes."""
BATCH_GROUPS = 8
LEARNING_RATE = 2e-4
WORK = Path(os.environ.get("ANSWER_WORK", "/tmp/answer"))
MODEL_DIR = ROOT / "qa" / "answer_model"
ONNX_NAME = "model_int8.onnx"
VALIDATION_SAMPLE = {"answerable": 300, "adversarial": 300, "off-corpus": 150}


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


# -- mining ----------------------------------------------------------------------------------------------


def mine(data: Path) -> None:
    """Writes WORK/groups_train.jsonl and WORK/groups_validation.jsonl."""
    from index.embedder import make_embedder
    from index.lexical import analyze

    rng = np.random.default_rng(SEED)
    dev_val, extra_val = split()
    dev_corpus = Corpus(data / "corpus")
    extra_corpus = Corpus(data / "squad11-extra" / "corpus")
    dev_q = load_questions(data / "dev.jsonl")
    extra_q = load_questions(data / "squad11-extra" / "train.jsonl")
    embedder = make_embedder("onnx")
    log(f"embedding {len(dev_corpus.sentences)} + {len(extra_corpus.sentences)} sentences, questions")
    dev_vecs = embedder.embed([s.text for s in dev_corpus.sentences])
    extra_vecs = embedder.embed([s.text for s in extra_corpus.sentences])
    dev_qv = embedder.embed([q.text for q in dev_q])
    extra_qv = embedder.embed([q.text for q in extra_q])
    # Training never sees the validation articles, not even as negatives.
    dev_train_ok = np.array([s.article not in dev_val for s in dev_corpus.sentences])
    extra_train_ok = np.array([s.article not in extra_val for s in extra_corpus.sentences])
    miners = {
        "dev-train": Miner(dev_corpus, dev_vecs, analyze, dev_train_ok),
        "dev-all": Miner(dev_corpus, dev_vecs, analyze),
        "extra-train": Miner(extra_corpus, extra_vecs, analyze, extra_train_ok),
        "extra-all": Miner(extra_corpus, extra_vecs, analyze),
    }
    train, validation = [], []
    for q, v in zip(dev_q, dev_qv):
        held = q.article in dev_val
        kind = "answerable" if q.answerable else "adversarial"
        g = miners["dev-all" if held else "dev-train"].group(q, v, GROUP_SIZE, kind, rng)
        if g is not None:
            (validation if held else train).append(g)
    for q, v in zip(extra_q, extra_qv):
        held = q.article in extra_val
        g = miners["extra-all" if held else "extra-train"].group(q, v, GROUP_SIZE, "answerable", rng)
        if g is not None:
            (validation if held else train).append(g)
        if held or rng.random() < 0.5:  # the same question asked of a folder without its article
            g = miners["dev-all" if held else "dev-train"].group(q, v, GROUP_SIZE, "off-corpus", rng)
            (validation if held else train).append(g)
    WORK.mkdir(parents=True, exist_ok=True)
    for name, groups in (("train", train), ("validation", validation)):
        with (WORK / f"groups_{name}.jsonl").open("w") as fh:
            for g in groups:
                fh.write(json.dumps(g.__dict__) + "\n")
        kinds = {k: sum(g.kind == k for g in groups) for k in ("answerable", "adversarial", "off-corpus")}
        log(f"{name}: {len(groups)} groups {kinds}")


def read_groups(name: str) -> list[dict]:
    return [json.loads(line) for line in (WORK / f"groups_{name}.jsonl").read_text().splitlines()]


# -- training --------------------------------------------------------------------------------------------


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    ranks = allv.argsort().argsort().astype(float) + 1
    # average ranks for ties
    _, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    sums = np.zeros(len(counts))
    np.add.at(sums, inv, ranks)
    ranks = (sums / counts)[inv]
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def group_logits(model, groups: list[dict], batch: int = 64) -> list[np.ndarray]:
    import torch

    pairs = [(g["question"], c) for g in groups for c in g["candidates"]]
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(pairs), batch):
            tokens = model.preprocess(pairs[i : i + batch])
            out.append(model(tokens)["scores"].view(-1).float().numpy())
    flat = np.concatenate(out) if out else np.zeros(0)
    result, at = [], 0
    for g in groups:
        result.append(flat[at : at + len(g["candidates"])])
        at += len(g["candidates"])
    return result


def candidate_metrics(groups: list[dict], logits: list[np.ndarray]) -> dict[str, float]:
    """Choosing the answering sentence among a question's candidates, and telling unanswerable apart by
    the best candidate's logit (AUC against adversarial and against off-corpus questions)."""
    best = {k: [] for k in ("answerable", "adversarial", "off-corpus")}
    right = []
    for g, lg in zip(groups, logits):
        best[g["kind"]].append(float(lg.max()))
        if g["kind"] == "answerable":
            right.append(g["labels"][int(lg.argmax())] == 1)
    ans = np.array(best["answerable"])
    return {
        "choose_right": float(np.mean(right)),
        "auc_adversarial": auc(ans, np.array(best["adversarial"])),
        "auc_off_corpus": auc(ans, np.array(best["off-corpus"])),
        "answered_at_0": float(np.mean(ans > 0)),
        "adversarial_flagged_at_0": float(np.mean(np.array(best["adversarial"]) <= 0)),
        "off_corpus_flagged_at_0": float(np.mean(np.array(best["off-corpus"]) <= 0)),
    }


def validation_sample() -> list[dict]:
    rng = random.Random(SEED)
    groups = read_groups("validation")
    out = []
    for kind, n in VALIDATION_SAMPLE.items():
        these = [g for g in groups if g["kind"] == kind]
        out += rng.sample(these, min(n, len(these)))
    return out


def cosine_baseline(groups: list[dict]) -> dict[str, float]:
    from index.embedder import make_embedder

    embedder = make_embedder("onnx")
    logits = []
    for g in groups:
        q = embedder.embed([g["question"]])[0]
        logits.append(embedder.embed(list(g["candidates"])) @ q)
    return candidate_metrics(groups, logits)


def train() -> None:
    import torch
    from datasets import Dataset
    from sentence_transformers.base.evaluation.evaluator import BaseEvaluator
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from torch import nn
    from transformers import set_seed

    from index.embedder import model_path

    torch.set_num_threads(2)
    set_seed(SEED)
    model = CrossEncoder(str(model_path()), num_labels=1, max_length=MAX_LENGTH, device="cpu")
    bert = model[0].auto_model
    bert.bert.encoder.layer = bert.bert.encoder.layer[:LAYERS]
    bert.config.num_hidden_layers = LAYERS

    class NoAnswerListLoss(nn.Module):
        """Softmax over a question's candidates and a "no answer" option of logit 0; the target is its
        answering sentence(s), or "no answer" when none of the candidates answers."""

        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, inputs, labels, prompt=None, task=None):
            queries, docs_list = inputs
            pairs = [(q, d) for q, docs in zip(queries, docs_list) for d in docs]
            logits = self.model(self.model.preprocess(pairs))["scores"].view(-1).float()
            loss, at = 0.0, 0
            for docs, lbl in zip(docs_list, labels):
                row = torch.cat([logits[at : at + len(docs)], logits.new_zeros(1)])
                at += len(docs)
                lbl = lbl.float()
                target = torch.cat([lbl, (lbl.sum() == 0).float().view(1)])
                target = target / target.sum()
                loss = loss - (target * torch.log_softmax(row, dim=0)).sum()
            return loss / len(docs_list)

        def get_config_dict(self):
            return {"no_answer_logit": 0.0}

    sample = validation_sample()

    class Validation(BaseEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.primary_metric = "score"
            self.greater_is_better = True

        def __call__(self, model, output_path=None, epoch=-1, steps=-1):
            started = time.time()
            metrics = candidate_metrics(sample, group_logits(model, sample))
            metrics["score"] = metrics["choose_right"] + metrics["auc_adversarial"] + metrics["auc_off_corpus"]
            log(f"validation epoch {epoch} steps {steps}: {json.dumps(metrics)} ({time.time() - started:.0f}s)")
            with (WORK / "validation_curve.jsonl").open("a") as fh:
                fh.write(json.dumps({"epoch": epoch, "steps": steps, **metrics}) + "\n")
            model.train()
            return self.prefix_name_to_metrics(metrics, "val") if hasattr(self, "prefix_name_to_metrics") else metrics

    groups = read_groups("train")
    groups = random.Random(SEED).sample(groups, min(TRAIN_GROUPS, len(groups)))
    dataset = Dataset.from_dict(
        {
            "question": [g["question"] for g in groups],
            "candidates": [g["candidates"] for g in groups],
            "labels": [g["labels"] for g in groups],
        }
    )
    log(f"training on {len(groups)} groups, {sum(len(g['candidates']) for g in groups)} pairs per epoch")
    (WORK / "validation_curve.jsonl").unlink(missing_ok=True)
    args = CrossEncoderTrainingArguments(
        output_dir=str(WORK / "checkpoints"),
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=BATCH_GROUPS,
        learning_rate=LEARNING_RATE,
        warmup_ratio=0.05,
        weight_decay=0.01,
        seed=SEED,
        data_seed=SEED,
        eval_strategy="steps",
        eval_steps=0.5,
        save_strategy="steps",
        save_steps=0.5,
        logging_steps=25,
        use_cpu=True,
        dataloader_num_workers=0,
        report_to="none",
    )
    validate = Validation()
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=dataset, loss=NoAnswerListLoss(model), evaluator=validate
    )
    validate(model, epoch=0, steps=0)
    trainer.train()
    best = max(
        (json.loads(line) for line in (WORK / "validation_curve.jsonl").read_text().splitlines()),
        key=lambda r: r["score"],
    )
    log(f"best validation: {best}")
    # Every epoch's checkpoint stays; the final model is the one with the best validation score.
    final = WORK / "final"
    shutil.rmtree(final, ignore_errors=True)
    chosen = WORK / "checkpoints" / f"checkpoint-{best['steps']}" if best["steps"] > 0 else None
    if chosen is None:
        model.save(str(final))
    else:
        shutil.copytree(chosen, final)
    (WORK / "chosen.json").write_text(json.dumps({"checkpoint": str(chosen), **best}))


# -- export ----------------------------------------------------------------------------------------------


def export() -> None:
    """int8 ONNX (dynamic quantization for AVX2) and the tokenizer files into qa/answer_model/."""
    from sentence_transformers import export_dynamic_quantized_onnx_model
    from sentence_transformers.cross_encoder import CrossEncoder

    final = WORK / "final"
    staging = WORK / "export"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(final, staging, ignore=shutil.ignore_patterns("optimizer.pt", "scheduler.pt", "rng_state.pth"))
    fp32 = CrossEncoder(str(staging), backend="onnx", device="cpu", max_length=MAX_LENGTH)
    fp32.save_pretrained(str(staging))
    export_dynamic_quantized_onnx_model(fp32, "avx2", str(staging), file_suffix="int8")
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(staging / "onnx" / "model_int8.onnx", MODEL_DIR / ONNX_NAME)
    for name in ("tokenizer.json", "config.json"):
        shutil.copyfile(staging / name, MODEL_DIR / name)
    (MODEL_DIR / "answer_model.json").write_text(
        json.dumps({"max_length": MAX_LENGTH, "onnx": ONNX_NAME, "layers": LAYERS}, indent=2) + "\n"
    )
    log(f"exported {MODEL_DIR / ONNX_NAME}: {(MODEL_DIR / ONNX_NAME).stat().st_size / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--stage", choices=("all", "mine", "train", "export", "calibrate"), default="all")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    random.seed(SEED)
    np.random.seed(SEED)
    if args.stage in ("all", "mine"):
        mine(args.data)
    if args.stage in ("all", "train"):
        train()
    if args.stage in ("all", "export"):
        export()
    if args.stage in ("all", "calibrate"):
        from training import calibrate

        calibrate.main(args.data)


if __name__ == "__main__":
    main()
