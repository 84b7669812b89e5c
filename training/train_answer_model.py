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
from training.squad_eval import auc  # noqa: E402

SEED = 13
LAYERS = 3
MAX_LENGTH = 128
GROUP_SIZE = 7
EPOCHS = 2
BATCH_GROUPS = 8
LEARNING_RATE = 1e-4
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


class AnswerScorer:
    """Builds the torch module: the first LAYERS layers of the sentence model read the (question, sentence)
    pair; a linear head on the mean of the token states gives the logit that the sentence answers.

    The mean of the token states is the sentence model's own pooling, so the head starts from features that
    mean something; a head on the [CLS] pooler of these weights does not learn (docs/design.md)."""

    @staticmethod
    def build(weights: Path | None = None):
        import torch
        from transformers import AutoModel

        from index.embedder import model_path

        class Scorer(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.encoder = AutoModel.from_pretrained(str(model_path()), add_pooling_layer=False)
                self.encoder.encoder.layer = self.encoder.encoder.layer[:LAYERS]
                self.encoder.config.num_hidden_layers = LAYERS
                self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)

            def forward(self, input_ids, attention_mask, token_type_ids):
                states = self.encoder(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(states.dtype)
                return self.head((states * mask).sum(1) / mask.sum(1).clamp(min=1.0)).squeeze(-1)

        model = Scorer()
        if weights is not None:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return model


def tokenizer():
    from transformers import AutoTokenizer

    from index.embedder import model_path

    return AutoTokenizer.from_pretrained(str(model_path()))


def score_pairs(model, tok, pairs: list[tuple[str, str]]):
    t = tok(
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        truncation="only_second",
        max_length=MAX_LENGTH,
        padding=True,
        return_tensors="pt",
    )
    return model(t["input_ids"], t["attention_mask"], t["token_type_ids"])


def group_logits(model, tok, groups: list[dict], batch: int = 64) -> list[np.ndarray]:
    import torch

    pairs = [(g["question"], c) for g in groups for c in g["candidates"]]
    model.eval()
    with torch.no_grad():
        flat = np.concatenate(
            [score_pairs(model, tok, pairs[i : i + batch]).numpy() for i in range(0, len(pairs), batch)]
        )
    model.train()
    result, at = [], 0
    for g in groups:
        result.append(flat[at : at + len(g["candidates"])])
        at += len(g["candidates"])
    return result


def no_answer_list_loss(logits, groups: list[dict]):
    """Softmax over a question's candidates and a "no answer" option of logit 0; the target is its answering
    sentence(s), or "no answer" when none of the candidates answers."""
    import torch

    loss, at = 0.0, 0
    for g in groups:
        n = len(g["candidates"])
        row = torch.cat([logits[at : at + n], logits.new_zeros(1)])
        at += n
        labels = torch.tensor(g["labels"], dtype=torch.float32)
        target = torch.cat([labels, (labels.sum() == 0).float().view(1)])
        loss = loss - (target / target.sum() * torch.log_softmax(row, dim=0)).sum()
    return loss / len(groups)


def train() -> None:
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(int(os.environ.get("ANSWER_THREADS", "2")))
    model = AnswerScorer.build()
    tok = tokenizer()
    groups = read_groups("train")
    sample = validation_sample()
    steps_per_epoch = (len(groups) + BATCH_GROUPS - 1) // BATCH_GROUPS
    total = steps_per_epoch * EPOCHS
    warmup = max(1, int(0.05 * total))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / (total - warmup)))
    )
    checkpoints = WORK / "checkpoints"
    shutil.rmtree(checkpoints, ignore_errors=True)
    checkpoints.mkdir(parents=True)
    curve = WORK / "validation_curve.jsonl"
    curve.unlink(missing_ok=True)

    def validate(step: int) -> None:
        started = time.time()
        metrics = candidate_metrics(sample, group_logits(model, tok, sample))
        metrics["score"] = metrics["choose_right"] + metrics["auc_adversarial"] + metrics["auc_off_corpus"]
        log(f"validation step {step}: {json.dumps(metrics)} ({time.time() - started:.0f}s)")
        torch.save(model.state_dict(), checkpoints / f"step-{step}.pt")
        with curve.open("a") as fh:
            fh.write(json.dumps({"steps": step, **metrics}) + "\n")

    log(f"training on {len(groups)} groups x {EPOCHS} epochs = {total} steps of {BATCH_GROUPS} groups")
    model.train()
    step, started, losses = 0, time.time(), []
    for epoch in range(EPOCHS):
        order = groups[:]
        random.Random(SEED + epoch).shuffle(order)
        for at in range(0, len(order), BATCH_GROUPS):
            batch = order[at : at + BATCH_GROUPS]
            logits = score_pairs(model, tok, [(g["question"], c) for g in batch for c in g["candidates"]])
            loss = no_answer_list_loss(logits, batch)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            losses.append(loss.item())
            if step % 50 == 0:
                log(f"step {step}/{total} loss {np.mean(losses[-50:]):.4f} ({time.time() - started:.0f}s)")
            if step % (steps_per_epoch // 2) == 0 or step == total:
                validate(step)
    best = max((json.loads(line) for line in curve.read_text().splitlines()), key=lambda r: r["score"])
    log(f"best validation: {best}")
    shutil.copyfile(checkpoints / f"step-{best['steps']}.pt", WORK / "final.pt")
    (WORK / "chosen.json").write_text(json.dumps(best))


# -- export ----------------------------------------------------------------------------------------------


def export() -> None:
    """int8 ONNX (dynamic quantization) and the tokenizer file into qa/answer_model/."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = AnswerScorer.build(WORK / "final.pt").eval()
    tok = tokenizer()
    example = tok(["a question?"], ["a sentence."], return_tensors="pt")
    staging = WORK / "export"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "pairs", 1: "tokens"} for n in names}
    torch.onnx.export(
        model,
        tuple(example[n] for n in names),
        str(staging / "model.onnx"),
        input_names=names,
        output_names=["logits"],
        dynamic_axes={**axes, "logits": {0: "pairs"}},
        opset_version=17,
        dynamo=False,
    )
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(staging / "model.onnx"), str(MODEL_DIR / ONNX_NAME), weight_type=QuantType.QInt8)
    tok.save_pretrained(str(staging))
    shutil.copyfile(staging / "tokenizer.json", MODEL_DIR / "tokenizer.json")
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
