"""The table of docs/slide.md, "Checked on real mosaics": for each IDC patient, its mosaic (``trainer slide-mosaic``)
scored with ``trainer slide`` (4 um/px, no overlap) against ``trainer evaluate`` on the same patient's patches, with
and without slide context (``trainer context``'s 3x3 mean). Tile i of the mosaic is patch i, so the two must agree.

    uv run python scripts/mosaic_auc.py assets/models/demo-cnn ../shared/data/idc 8914 8951 8955 9022 9076 9124
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(model, ckpt: Path, idc: Path, patient: str, tmp: Path) -> str:
    from sklearn.metrics import roc_auc_score

    from trainer.slide.mosaic import compare_with_evaluate

    got = compare_with_evaluate(model, ckpt, idc / patient, tmp)
    aucs, diff = [], 0.0
    for context in (False, True):
        y, tiles, ev = got[context]
        aucs += [roc_auc_score(y, tiles), roc_auc_score(y, ev)]
        diff = max(diff, float(abs(tiles - ev).max()))
    y_all, p_all, ctx_all = got["all"]
    n = len(got[True][0])
    whole = f"{roc_auc_score(y_all, p_all):.4f} / {roc_auc_score(y_all, ctx_all):.4f} ({len(y_all)})"
    cells = [patient, str(got["patches"]), str(n), *(f"{v:.4f}" for v in aucs), f"{diff:.1e}", whole]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("idc", help="the IDC folder (one subfolder per patient)")
    ap.add_argument("patients", nargs="+")
    args = ap.parse_args()
    from trainer.models import load_checkpoint

    model = load_checkpoint(args.model, device="cpu")
    print(
        "| patient | patches | tissue tiles matched | tile AUC | evaluate AUC (same patches) | tile AUC, context "
        "| evaluate AUC, context | max abs. diff. of P | evaluate on all its patches: AUC / context (n) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for patient in args.patients:
        with tempfile.TemporaryDirectory() as tmp:
            print(one(model, Path(args.model), Path(args.idc), patient, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
