"""DeePromoter recipe search: the pilot loop (scratch, kept so its numbers can be reproduced).

A plain PyTorch loop (no Lightning, no length bucketing, OneCycle LR) over the benchmark's
labelled FASTA (`benchmarks.accuracy` builds it: <out>/data/tata_deepromoter/data.fa), training
either a small 1-D CNN on single bases (`--model cnn`) or the project's own `GenomicsModel`
(`--model bb`, with `--k`, `--stem_kernel`, `--stages` = model.stem_layers, ...). Test metrics
are those of the epoch with the lowest validation loss. The benchmark numbers of record come
from `python -m benchmarks.accuracy` (the project's CLI); this loop only chose what to run.

    python benchmarks/results/accuracy_tower_cpu_2026-11-28/pilot_loop.py \
        --data DATA.fa --model cnn \
        --k 1 --epochs 15
"""

import argparse
import time

import numpy as np
import torch
from torch import nn
from torchmetrics.functional.classification import binary_auroc, binary_f1_score

from bigbird_genomics.model.network import GenomicsModel
from bigbird_genomics.tokens.kmers import KmerTokenizer

p = argparse.ArgumentParser()
p.add_argument("--model", default="cnn")
p.add_argument("--k", type=int, default=1)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--wd", type=float, default=0.01)
p.add_argument("--bs", type=int, default=32)
p.add_argument("--hidden", type=int, default=128)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--stem_kernel", type=int, default=9)
p.add_argument("--stem_pool", type=int, default=4)
p.add_argument("--dropout", type=float, default=0.1)
p.add_argument("--pooling", default="cls")
p.add_argument("--rc", type=int, default=0)
p.add_argument("--stages", type=int, default=1)
p.add_argument("--emb", type=int, default=0)
p.add_argument("--torch_init", type=int, default=0)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--data", required=True, help="labelled FASTA (label=, split= in headers)")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
np.random.seed(a.seed)

recs = []
with open(a.data) as stream:
    text = stream.read()
for block in text.split(">")[1:]:
    head, *seq = block.split("\n")
    f = dict(x.split("=") for x in head.split()[1:])
    recs.append(("".join(seq).upper(), int(f["label"]), f["split"]))
tok = KmerTokenizer(k=a.k, stride=1)


def enc(s):
    ids = tok.encode(s)
    return ids


split = {}
for name in ("train", "val", "test"):
    R = [r for r in recs if r[2] == name]
    X = torch.tensor(np.stack([enc(r[0]) for r in R]).astype(np.int64))
    y = torch.tensor([r[1] for r in R], dtype=torch.float32)
    split[name] = (X, y)
print({k: tuple(v[0].shape) for k, v in split.items()}, "vocab", len(tok.vocabulary()), flush=True)
V = len(tok.vocabulary())
rc_table = torch.tensor(tok.reverse_complement_ids().astype(np.int64))


class CNN(nn.Module):
    def __init__(s, h=128):
        super().__init__()
        s.emb = nn.Embedding(V, 32)
        s.net = nn.Sequential(
            nn.Conv1d(32, h, 15, padding=7),
            nn.ReLU(),
            nn.MaxPool1d(4),
            nn.Dropout(a.dropout),
            nn.Conv1d(h, h, 9, padding=4),
            nn.ReLU(),
            nn.MaxPool1d(4),
            nn.Dropout(a.dropout),
            nn.Conv1d(h, h, 5, padding=2),
            nn.ReLU(),
        )
        s.out = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Dropout(a.dropout), nn.Linear(h, 1))

    def forward(s, x):
        z = s.net(s.emb(x).transpose(1, 2))
        return s.out(z.amax(-1)).squeeze(-1)


if a.model == "cnn":
    model = CNN(a.hidden)

    def fwd(x):
        return model(x)

else:
    cls_id = tok.vocabulary().index("[CLS]") if "[CLS]" in tok.vocabulary() else None
    enc_cfg = dict(
        vocab_size=V,
        hidden_size=a.hidden,
        num_layers=a.layers,
        num_heads=4,
        intermediate_size=4 * a.hidden,
        dropout=a.dropout,
        max_tokens=512,
        stem_kernel=a.stem_kernel,
        stem_pool=a.stem_pool,
        stem_layers=a.stages,
    )
    att = dict(
        block_size=32, num_window_blocks=3, num_global_blocks=2, num_random_blocks=3, backend="auto"
    )
    model = GenomicsModel(enc_cfg, att, "binary", 1, a.pooling)
    if a.torch_init:
        for m in model.encoder.stem.modules():
            if isinstance(m, nn.Conv1d):
                m.reset_parameters()

    def fwd(x):
        if cls_id is not None:
            x = torch.cat([torch.full((x.shape[0], 1), cls_id), x], 1)
        return model(x, torch.ones_like(x, dtype=torch.bool)).squeeze(-1)


print("params", sum(p.numel() for p in model.parameters()), flush=True)
Xtr, ytr = split["train"]
steps = a.epochs * ((len(ytr) + a.bs - 1) // a.bs)
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps, pct_start=0.1)
lossf = nn.BCEWithLogitsLoss()


def score(name):
    model.eval()
    X, y = split[name]
    out = []
    with torch.no_grad():
        for i in range(0, len(y), 256):
            xb = X[i : i + 256]
            pr = torch.sigmoid(fwd(xb))
            if a.rc:
                pr = (pr + torch.sigmoid(fwd(rc_table[xb.flip(1)]))) / 2
            out.append(pr)
    pr = torch.cat(out)
    model.train()
    loss = nn.functional.binary_cross_entropy(pr.clamp(1e-6, 1 - 1e-6), y).item()
    return (
        loss,
        binary_f1_score(pr, y.long()).item(),
        binary_auroc(pr, y.long()).item(),
        ((pr > 0.5) == y.bool()).float().mean().item(),
    )


t0 = time.time()
best = (9, None)
g = torch.Generator().manual_seed(a.seed)
for ep in range(a.epochs):
    perm = torch.randperm(len(ytr), generator=g)
    for i in range(0, len(ytr), a.bs):
        idx = perm[i : i + a.bs]
        xb, yb = Xtr[idx], ytr[idx]
        if a.rc:
            flip = torch.rand(len(idx), generator=g) < 0.5
            xb = torch.where(flip[:, None], rc_table[xb.flip(1)], xb)
        loss = lossf(fwd(xb), yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    v = score("val")
    te = score("test")
    if v[0] < best[0]:
        best = (v[0], te, ep)
    print(
        f"ep {ep} {time.time() - t0:.0f}s val loss {v[0]:.3f} f1 {v[1]:.3f} auc {v[2]:.3f} | "
        f"test f1 {te[1]:.3f} auc {te[2]:.3f} acc {te[3]:.3f}",
        flush=True,
    )
print(
    "BEST(val loss) ep",
    best[2],
    "test f1 {:.4f} auc {:.4f} acc {:.4f}".format(*best[1][1:]),
    f"min {(time.time() - t0) / 60:.1f}",
)
