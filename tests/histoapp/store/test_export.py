"""Exports: CSV/JSON contents, and the consensus dataset read back by the trainer's data sources."""

from __future__ import annotations

import csv
import json

import pytest

from histoapp.store import StoreError
from trainer.data.sources import index_dataset


def _label_some(store, image_ids):
    want = {}
    for k, i in enumerate(image_ids[:12]):
        sub = ("A", "F", "DC", "PC")[k % 4]
        store.annotate(i, "ann", subtype=sub, note=f"n{k}")
        want[i] = (1 if sub in ("DC", "PC") else 0, sub)
    store.annotate(image_ids[12], "ann", label=1)  # a conflict: left out of the dataset
    store.annotate(image_ids[12], "bob", label=0)
    return want


@pytest.mark.parametrize("source", ["auto", "folder"])
def test_export_dataset_round_trips_through_trainer_sources(store, image_ids, tmp_path, source):
    want = _label_some(store, image_ids)
    out = store.export_dataset(tmp_path / "export")
    report = index_dataset(out, source)
    sha = {store.image(i)["sha256"]: i for i in want}
    prov = json.loads((out / "provenance.json").read_text())
    by_file = {f["file"]: f for f in prov["files"]}
    got = {}
    for r in report.records:
        rel = r.path[len(str(out)) + 1 :]
        got[by_file[rel]["image_id"]] = (r.label, r.subtype)
        assert sha[by_file[rel]["sha256"]] == by_file[rel]["image_id"]
    if source == "auto":  # the manifest keeps the annotated subtypes and patient ids
        assert report.source == "csv" and got == want
        assert {r.patient_id for r in report.records} == {store.image(i)["patient_id"] for i in want}
    else:  # plain class folders keep the labels
        assert report.source == "folder" and {i: v[0] for i, v in got.items()} == {i: v[0] for i, v in want.items()}
    # traceable: every file names the annotations it came from, and the database state is named
    ann_ids = {a["image_id"]: a["id"] for a in store.annotations(annotator="ann")}
    assert all(f["annotation_ids"] == [ann_ids[f["image_id"]]] for f in prov["files"])
    assert prov["audit_log_position"] == max(e["id"] for e in store.audit_log())
    if store.engine.dialect.name == "sqlite":  # a file copy of the database; a server keeps its own backups
        assert (out / prov["snapshot"]["file"]).exists()
    else:
        assert prov["snapshot"] is None


def test_export_refuses_non_empty_folder_and_nothing_to_export(store, image_ids, tmp_path):
    with pytest.raises(StoreError, match="nothing to export"):
        store.export_dataset(tmp_path / "empty")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    store.annotate(image_ids[0], "ann", label=1)
    with pytest.raises(StoreError, match="not empty"):
        store.export_dataset(tmp_path / "full")


def test_missing_files_are_skipped_and_reported(store, tmp_path, patches):
    import shutil

    src = sorted(patches.rglob("*.png"))[:2]
    copies = []
    for k, p in enumerate(src):
        copies.append(tmp_path / f"c{k}.png")
        shutil.copy(p, copies[-1])
    ids = [store.add_image(c, dataset="upload") for c in copies]
    for i in ids:
        store.annotate(i, "ann", label=0)
    copies[0].unlink()
    prov = json.loads((store.export_dataset(tmp_path / "out") / "provenance.json").read_text())
    assert [s["image_id"] for s in prov["skipped"]] == [ids[0]] and len(prov["files"]) == 1


def test_csv_and_json_exports(store, image_ids, tmp_path):
    store.annotate(image_ids[0], "ann", label=1, subtype="MC", confidence=0.9, pen_mark=True, note='a, "quoted" note')
    store.add_prediction(image_ids[0], model="resnet34", prob_malignant=0.7, label=1)
    with open(store.export_csv(tmp_path / "a.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["label"] == "malignant" and rows[0]["subtype"] == "MC"
    assert rows[0]["note"] == 'a, "quoted" note' and rows[0]["pen_mark"] == "1"
    doc = json.loads(store.export_json(tmp_path / "a.json").read_text())
    first = next(i for i in doc["images"] if i["id"] == image_ids[0])
    assert first["annotations"][0]["confidence"] == 0.9 and first["predictions"][0]["model"] == "resnet34"
    assert len(doc["images"]) == 32
