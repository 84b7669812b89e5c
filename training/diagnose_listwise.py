"""Diagnostic behind the mean-pooled row of docs/design.md "The answer model": a head on the mean of the token
states, trained with the listwise "no answer" loss over all kinds of group, then scored on the validation groups.

    .venv/bin/python training/diagnose_listwise.py 3 1e-4 300
"""

import random
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)
torch.manual_seed(13)
from transformers import AutoModel, AutoTokenizer  # noqa: E402

from index.embedder import model_path  # noqa: E402
from training.train_answer_model import read_groups, validation_sample  # noqa: E402

layers = int(sys.argv[1])
lr = float(sys.argv[2])
steps = int(sys.argv[3])
tok = AutoTokenizer.from_pretrained(str(model_path()))
enc = AutoModel.from_pretrained(str(model_path()))
enc.encoder.layer = enc.encoder.layer[:layers]
head = torch.nn.Linear(384, 1)


def score(pairs):
    t = tok(
        [p[0] for p in pairs], [p[1] for p in pairs], truncation=True, max_length=128, padding=True, return_tensors="pt"
    )
    h = enc(**t).last_hidden_state
    m = t["attention_mask"].unsqueeze(-1).float()
    return head((h * m).sum(1) / m.sum(1)).view(-1)


groups = read_groups("train")
random.Random(13).shuffle(groups)
val = validation_sample()
opt = torch.optim.AdamW(list(enc.parameters()) + list(head.parameters()), lr=lr)
t0 = time.time()
losses = []
for step in range(steps):
    batch = groups[step * 8 : (step + 1) * 8]
    flat = score([(g["question"], c) for g in batch for c in g["candidates"]])
    loss, at = 0.0, 0
    for g in batch:
        row = torch.cat([flat[at : at + len(g["candidates"])], flat.new_zeros(1)])
        at += len(g["candidates"])
        lbl = torch.tensor(g["labels"], dtype=torch.float)
        target = torch.cat([lbl, (lbl.sum() == 0).float().view(1)])
        loss = loss - (target / target.sum() * torch.log_softmax(row, 0)).sum()
    loss = loss / len(batch)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step % 20 == 19:
        print(step, np.mean(losses[-20:]), f"{time.time() - t0:.0f}s", flush=True)
enc.eval()
from training.train_answer_model import candidate_metrics  # noqa: E402

with torch.no_grad():
    logits = [score([(g["question"], c) for c in g["candidates"]]).numpy() for g in val]
print("val", candidate_metrics(val, logits), flush=True)
