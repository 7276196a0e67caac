"""Fold 0's three models trained on the same 153 patients, averaged on their 7,394 test patches: the 64 px CNN
(`cnn/`), the bundled demo CNN (`demo64_os16/`) and the VLM (`vlm/`), from their committed ``predictions.csv``.
Prints ROC-AUC and balanced accuracy (at 0.5) of each model and of the means.

    uv run python results/idc/idc211/ensemble_fold0.py
"""

from pathlib import Path

import pandas as pd
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

HERE = Path(__file__).resolve().parent
FILES = {
    "cnn": HERE / "cnn/resnet18/40X/fold0/predictions.csv",
    "demo": HERE / "demo64_os16/predictions.csv",
    "vlm": HERE / "vlm/idefics3-tiny-full/40X/fold0/predictions.csv",
}
table = None
for name, path in FILES.items():
    part = pd.read_csv(path, usecols=["image_id", "label", "prob_malignant"]).rename(columns={"prob_malignant": name})
    table = part if table is None else table.merge(part.drop(columns="label"), on="image_id")
for combo in (["cnn"], ["demo"], ["vlm"], ["cnn", "demo"], ["demo", "vlm"], ["cnn", "demo", "vlm"]):
    p = table[combo].mean(axis=1)
    auc, bal = roc_auc_score(table.label, p), balanced_accuracy_score(table.label, p >= 0.5)
    print(f"{' + '.join(combo):<16} {len(table)} patches  ROC-AUC {auc:.4f}  balanced accuracy {bal:.4f}")
