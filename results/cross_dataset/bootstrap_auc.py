"""95 % bootstrap interval of ROC-AUC from a ``predictions.csv`` of ``trainer evaluate``, resampling cases (its
``patient_id``: each UCSB image, each BreakHis slide) with replacement, 2,000 draws, seed 0. Resampling slides, not
images, because a slide's images are not independent.

    python results/cross_dataset/bootstrap_auc.py results/cross_dataset/demo-cnn/ucsb/predictions.csv"""

import csv
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

with open(sys.argv[1], newline="") as fh:
    rows = list(csv.DictReader(fh))
cases = sorted({r["patient_id"] for r in rows})
by_case = {c: [r for r in rows if r["patient_id"] == c] for c in cases}
rng, aucs = np.random.default_rng(0), []
for _ in range(2000):
    drawn = [r for j in rng.integers(0, len(cases), len(cases)) for r in by_case[cases[j]]]
    y = [int(r["label"]) for r in drawn]
    if len(set(y)) == 2:
        aucs.append(roc_auc_score(y, [float(r["prob_malignant"]) for r in drawn]))
low, high = np.percentile(aucs, [2.5, 97.5])
print(f"{sys.argv[1]}: ROC-AUC 95 % interval {low:.3f}-{high:.3f} ({len(cases)} cases, {len(aucs)} draws)")
