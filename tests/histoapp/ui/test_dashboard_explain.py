"""The Dashboard's explanation panel (issue 27): a run's explain-eval table found and drawn with the trainer's
layout and the command that made it; the raters' agreement on the maps' ratings from the store."""

from __future__ import annotations

import json
from types import SimpleNamespace

from histoapp.settings import Settings
from histoapp.store import open_store
from histoapp.ui.tabs import dashboard


def test_a_run_s_explain_eval_table_is_listed_and_drawn(tmp_path):
    ctx = SimpleNamespace(settings=Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    folder = ctx.settings.runs_dir / "idc-cv" / "explain"
    folder.mkdir(parents=True)
    rows = [{"model": "resnet18", "method": "Score-CAM", "n_images": 40, "road_combined": 0.12, "faithful": True}]
    (folder / "explain_eval.json").write_text(json.dumps({"rows": rows, "command": "python -m trainer explain-eval"}))
    (ctx.settings.runs_dir / "idc-cv" / "results.json").write_text("{}")  # another JSON file: not a table
    picker = dashboard.explain_tables(ctx)
    assert "run idc-cv/explain" in picker["choices"]
    text = dashboard.explain_table(ctx, "run idc-cv/explain")
    assert "| resnet18 | Score-CAM | 40 | +0.120 |" in text and "Made by `python -m trainer explain-eval`" in text
    assert "No explain-eval table yet" in dashboard.explain_table(ctx, "run gone")


def test_the_raters_agreement_on_map_ratings(tmp_path):
    from trainer.data.synthetic import generate

    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    root = generate(tmp_path / "p", patients_per_subtype=1, images_per_magnification=1, size=32, seed=3)
    ids = [store.add_image(p, dataset="d") for p in sorted(root.rglob("*.png"))[:4]]
    for who, values in (("dr_a", [1, 3, 5, 4]), ("dr_b", [1, 3, 4, 4])):
        for image_id, r in zip(ids, values, strict=True):
            store.rate_map(image_id, who, model="demo:demo-cnn", method="Grad-CAM", rating=r)
    head, table = dashboard.rating_agreement(SimpleNamespace(store=store))
    assert "8 rating(s) by 2 rater(s) (dr_a, dr_b)" in head
    assert table.values.tolist()[0][:4] == ["dr_a", "dr_b", 4, "0.750"]
    kappa = float(table.values.tolist()[0][4])
    assert 0.8 < kappa <= 1.0 and f"**{kappa:.3f}**" in head
    store.close()
