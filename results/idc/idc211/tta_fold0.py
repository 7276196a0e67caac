"""The bundled demo CNN on fold 0's 34 held-out patients (all 7,394 test patches of runs/idc211_demo64), plain and
as the mean of its 8 flips / 90-degree rotations (test-time augmentation). Writes tta_fold0.json beside this file.

    uv run python results/idc/idc211/tta_fold0.py [runs/idc211_demo64/resnet18-os16/40X/fold0/predictions.csv]
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from trainer.models import load_checkpoint

torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
table = sys.argv[1] if len(sys.argv) > 1 else "runs/idc211_demo64/resnet18-os16/40X/fold0/predictions.csv"
with open(table, newline="") as fh:
    rows = list(csv.DictReader(fh))
ck = load_checkpoint(ROOT / "assets" / "models" / "demo-cnn", device="cpu")
ad = ck.adapter
tf = ad.transform(False, ck.input_size)
y, plain, tta = [], [], []
B = 128
for i in range(0, len(rows), B):
    chunk = rows[i : i + B]
    x = torch.stack([tf(Image.open(ROOT / r["path"]).convert("RGB")) for r in chunk])
    outs = []
    with torch.no_grad():
        for k in range(4):
            for flip in (False, True):
                xx = torch.rot90(x, k, (2, 3))
                if flip:
                    xx = torch.flip(xx, (3,))
                outs.append(torch.softmax(ad.module(xx), 1)[:, 1])
    p = torch.stack(outs)
    plain += p[0].tolist()
    tta += p.mean(0).tolist()
    y += [int(r["label"]) for r in chunk]
y, out = np.array(y), {"patches": len(rows), "patients": len({r["patient_id"] for r in rows})}
for name, p in (("plain", np.array(plain)), ("tta8", np.array(tta))):
    out[name] = {"roc_auc": roc_auc_score(y, p), "balanced_accuracy": balanced_accuracy_score(y, p >= 0.5)}
    print(name, len(y), f"{out[name]['roc_auc']:.4f}", f"{out[name]['balanced_accuracy']:.4f}")
(HERE / "tta_fold0.json").write_text(json.dumps(out, indent=1))
