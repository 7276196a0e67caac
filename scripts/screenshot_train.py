"""Screenshots of the Train and Dashboard tabs (docs/train.png, docs/dashboard.png, docs/dashboard_empty.png) in
headless Chromium.

    uv run python scripts/screenshot_train.py [--out docs] [--work /tmp/histoapp-shots]

Generated data only (trainer.data.synthetic): a finished run (resnet18 full fine-tuning vs linear probe,
40X and 100X, 3 patient-level folds, a few steps per fold) for the Dashboard, and the "quick demo" preset
launched from the Train tab, photographed once its first epoch is validated, then stopped. Last, the Dashboard
of an app with no runs (its empty state, listing the committed results/)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from _browser import app_page

from histoapp.settings import Settings
from trainer.config import ExperimentConfig

FINISHED = "demo-resnet18-full-vs-probe"


def finished_run(settings: Settings, data_root: Path) -> None:
    from trainer.cv import run_experiment

    cfg = ExperimentConfig.from_dict(
        {
            "name": FINISHED,
            "output_dir": str(settings.runs_dir),
            "data": {
                "source": "breakhis",
                "root": str(data_root),
                "magnifications": ["40X", "100X"],
                "folds": 3,
                "input_size": 48,
                "num_workers": 0,
            },
            "models": [
                {"family": "cnn", "name": "resnet18", "pretrained": False},
                {"family": "cnn", "name": "resnet18", "pretrained": False, "mode": "linear_probe"},
            ],
            "train": {
                "epochs": 2,
                "batch_size": 8,
                "lr": 0.001,
                "early_stopping_patience": 0,
                "mixed_precision": "no",
                "log_every": 1,
            },
        }
    )
    run_experiment(cfg, progress=False, cpu=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs")
    ap.add_argument("--work", default="/tmp/histoapp-shots")
    ap.add_argument("--reuse", action="store_true", help="keep the finished run of an earlier call in --work")
    ap.add_argument("--wait-min", type=float, default=5, help="how long to wait for each step (a busy CPU: more)")
    args = ap.parse_args()
    work = Path(args.work)
    settings = Settings(runs_dir=work / "runs", data_dir=work / "data", allowed_roots=[work / "data"])
    done = settings.runs_dir / FINISHED
    if args.reuse and (done / "results.json").is_file():
        for other in (p for p in settings.runs_dir.iterdir() if p != done):  # runs launched by an earlier call
            shutil.rmtree(other)
    else:
        shutil.rmtree(work, ignore_errors=True)
        from trainer.data.synthetic import generate

        data = generate(work / "data" / "breakhis", patients_per_subtype=2, images_per_magnification=6, size=64, seed=0)
        finished_run(settings, data)

    from histoapp.runs import RunManager

    out = Path(args.out)
    try:
        with app_page(settings, timeout_ms=int(args.wait_min * 60_000)) as page:
            page.get_by_role("tab", name="Train").click()
            name = page.get_by_label("Run name").input_value()
            page.locator("#train-launch").click()
            page.locator("#train-status").get_by_text(f"{name} — running").wait_for()
            page.wait_for_function(
                "document.querySelectorAll('#train-val-plot g.scatterlayer g.trace g.points path').length >= 2"
            )
            page.wait_for_timeout(2500)
            page.screenshot(path=str(out / "train.png"), full_page=True)
            page.locator("#train-stop").click()
            page.get_by_role("tab", name="Dashboard").click()
            page.locator("#dash-table").locator("text=100X >> visible=true").first.wait_for()
            page.get_by_label("Run / model / magnification for ROC, calibration and confusion matrices").click()
            page.get_by_role("option", name="/ resnet18 / 40X").first.click()
            page.wait_for_function("document.querySelector('#dash-confusion text.gtitle')")
            page.wait_for_timeout(3000)
            page.screenshot(path=str(out / "dashboard.png"), full_page=True)
    finally:
        manager = RunManager(settings, background=False)
        for info in manager.list_runs():
            if info.active:
                manager.stop(info.name, force=True)
    empty = Settings(runs_dir=work / "no-runs", data_dir=work / "data", allowed_roots=[work / "data"])
    with app_page(empty) as page:
        page.get_by_role("tab", name="Dashboard").click()
        page.locator("#dash-empty").get_by_text("No runs with a finished fold yet").wait_for()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "dashboard_empty.png"), full_page=True)
    print(f"wrote {out / 'train.png'}, {out / 'dashboard.png'} and {out / 'dashboard_empty.png'}")


if __name__ == "__main__":
    main()
