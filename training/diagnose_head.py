"""Diagnostic behind docs/design.md "The answer model": does a MiniLM cross-encoder learn to pick the answering
sentence of a group when the head reads BERT's [CLS] pooler (what CrossEncoder does) or the mean of the token
states (the pooling all-MiniLM-L6-v2 was trained with)? Needs training/train_answer_model.py --stage mine first.

    .venv/bin/python training/diagnose_head.py cls 3 5e-5 60
    .venv/bin/python training/diagnose_head.py mean 3 1e-4 60
"""

import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.embedder import model_path  # noqa: E402
from training.train_answer_model import read_groups, validation_sample  # noqa: E402


def main() -> None:
    head_kind, layers, lr, steps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(2)
    torch.manual_seed(13)
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_path()))
    if head_kind == "cls":
        model = AutoModelForSequenceClassification.from_pretrained(str(model_path()), num_labels=1)
        model.bert.encoder.layer = model.bert.encoder.layer[:layers]
        params = list(model.parameters())
    else:
        model = AutoModel.from_pretrained(str(model_path()))
        model.encoder.layer = model.encoder.layer[:layers]
        head = torch.nn.Linear(384, 1)
        params = list(model.parameters()) + list(head.parameters())

    def score(pairs):
        t = tok(
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            truncation=True,
            max_length=128,
            padding=True,
            return_tensors="pt",
        )
        if head_kind == "cls":
            return model(**t).logits.view(-1)
        h = model(**t).last_hidden_state
        m = t["attention_mask"].unsqueeze(-1).float()
        return head((h * m).sum(1) / m.sum(1)).view(-1)

    groups = [g for g in read_groups("train") if g["kind"] == "answerable" and len(g["candidates"]) == 7]
    random.Random(13).shuffle(groups)
    val = [g for g in validation_sample() if g["kind"] == "answerable"][:150]
    opt = torch.optim.AdamW(params, lr=lr)
    started, losses = time.time(), []
    for step in range(steps):
        batch = groups[step * 8 : (step + 1) * 8]
        logits = score([(g["question"], c) for g in batch for c in g["candidates"]]).view(len(batch), -1)
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([g["labels"].index(1) for g in batch]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % 20 == 19:
            print(step, round(float(np.mean(losses[-20:])), 3), f"{time.time() - started:.0f}s", flush=True)
    model.eval()
    with torch.no_grad():
        right = [g["labels"][int(score([(g["question"], c) for c in g["candidates"]]).argmax())] == 1 for g in val]
    print("validation choose right", float(np.mean(right)))


if __name__ == "__main__":
    main()
