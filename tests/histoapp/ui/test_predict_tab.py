"""The Predict tab's handlers without a browser: a run's CNN on uploads, bad files, batch CSV, the queue."""

import csv
from types import SimpleNamespace

import pytest

from histoapp.models import runner, uploads
from histoapp.models.ops import LocalModels
from histoapp.models.registry import ModelRegistry
from histoapp.settings import Settings
from histoapp.ui import predict_view as view
from histoapp.ui.tabs import predict as tab

OUT = [
    "errors",
    "cnn_title",
    "cnn_label",
    "cnn_info",
    "cnn_img",
    "vlm_title",
    "vlm_label",
    "vlm_info",
    "vlm_img",
    "cnn_faith",
    "vlm_faith",
    "vlm_answer",
    "agreement",
    "send",
    "send_status",
    "table",
    "csv",
    "pick",
    "session",
]


@pytest.fixture
def ctx(tmp_path, trained_run):
    """The tiny run's CNN with a trust reference whose uncertain band is empty: on tissue patches it answers
    (whatever its confidence), so the label / heat-map paths are exercised; hostile images still abstain."""
    import shutil

    from trainer.config import TrustConfig
    from trainer.trust.reference import TrustReference

    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs)
    TrustReference(TrustConfig(uncertain_low=0.5, uncertain_high=0.5)).save(runs / "tiny/resnet18/all/fold0/best")
    settings = Settings(runs_dir=runs, data_dir=tmp_path / "data")
    registry = ModelRegistry(settings, assets_dir=tmp_path / "none", hub_models=[])
    return SimpleNamespace(settings=settings, registry=registry, models=LocalModels(registry))


@pytest.fixture
def patches(synthetic_records, tmp_path):
    import shutil

    out = []
    for r in [r for r in synthetic_records if r.label == 0][:1] + [r for r in synthetic_records if r.label == 1][:2]:
        dst = tmp_path / "up" / r.image_id
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(r.path, dst)
        out.append(str(dst))
    return out


def _run(ctx, files, **kw):
    key = ctx.registry.list("cnn")[0].key
    args = (
        dict(magnification="40X", cnn_key=key, vlm_key="", method="Grad-CAM", target=tab.PREDICTED_CLASS, opacity=0.5)
        | kw
    )
    out = tab.analyze(ctx, files, **args)
    assert list(out) == OUT  # every output of the tab, by name
    return out


def test_one_patch_gives_label_overlay_latency_and_keeps_a_copy(ctx, patches):
    out = _run(ctx, [patches[0]])
    assert out["errors"] == ""
    scores = out["cnn_label"]["value"]
    assert set(scores) == {"benign", "malignant"} and abs(sum(scores.values()) - 1) < 1e-5
    assert out["cnn_label"]["show_heading"] is True and out["cnn_label"]["elem_classes"] == []
    assert out["cnn_img"].size == (
        view.OVERLAY_MIN_SIDE,
        view.OVERLAY_MIN_SIDE,
    )  # the 64 px patch, enlarged for the screen
    assert "ms" in out["cnn_info"] and "Grad-CAM" in out["cnn_info"]
    item = out["session"].items[0]
    assert item.path.startswith(str(ctx.settings.data_dir / "uploads")) and item.magnification == "40X"
    assert out["table"]["visible"] is False
    # The opacity slider re-blends without running the model.
    blended = tab.reblend(out["session"], 0.0)
    cnn_img, vlm_img = blended["cnn_img"], blended["vlm_img"]
    assert list(cnn_img.getdata()) == list(view.display(item.image).getdata()) and vlm_img is None


def test_corrupt_and_unsupported_files_get_a_clear_error_and_the_rest_still_works(ctx, patches, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    out = _run(ctx, [str(bad), patches[1], str(txt)])
    assert "broken.png" in out["errors"] and "corrupt" in out["errors"]
    assert "notes.txt" in out["errors"] and "unsupported file type" in out["errors"]
    assert out["cnn_label"]["value"] is not None  # the readable patch was still predicted
    rows = out["table"]["value"]
    assert [r[0] for r in rows] == ["broken.png", patches[1].rsplit("/", 1)[-1], "notes.txt"]
    only_bad = _run(ctx, [str(bad)])
    assert "corrupt" in only_bad["errors"] and only_bad["cnn_label"]["value"] is None


def test_batch_table_and_csv(ctx, patches):
    out = _run(ctx, patches)
    assert out["table"]["visible"] is True and len(out["table"]["value"]) == 3
    with open(out["csv"]["value"]) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and all(0.0 <= float(r["cnn_p_malignant"]) <= 1.0 for r in rows)
    assert {"cnn_ood_score", "cnn_ood", "cnn_abstain_reason", "vlm_ood", "vlm_abstain_reason"} <= set(rows[0])
    assert out["pick"]["visible"] is True
    # Details for another patch, and another CAM method / target class.
    nxt = tab.show_item(ctx, out["session"], rows[2]["file"], "Eigen-CAM", "benign", 0.5)
    assert nxt["session"].current == 2 and "Eigen-CAM for class 'benign'" in nxt["cnn_info"]
    again = tab.re_explain(ctx, nxt["session"], "Grad-CAM++", "malignant", 0.5)
    assert "Grad-CAM++ for class 'malignant'" in again["cnn_info"]


def test_disagreements_go_to_the_annotation_store(ctx, patches):
    out = _run(ctx, [patches[0]])
    session = out["session"]
    it = session.items[0]
    # A VLM that says the opposite (the real one is exercised in the browser test).
    it.vlm = SimpleNamespace(label="benign" if it.cnn.label == "malignant" else "malignant", prob_malignant=0.5)
    session.vlm_key = "demo:fake-vlm"
    text, send = view.agreement(ctx, session)
    assert "disagree" in text and send["visible"] is True

    calls = []

    class Store:
        def add_image(self, path, *, dataset, magnification=None, **kw):
            calls.append(("image", path, dataset, magnification))
            return 7

        def add_prediction(self, image_id, *, model, prob_malignant, label, kind, **kw):
            calls.append(("pred", image_id, model, kind))

    ctx.store = Store()
    msg = tab.send_to_annotation(ctx, session)
    assert msg.startswith("✅ Sent 1") and calls[0] == ("image", it.path, "uploads", "40X")
    assert [(c[2], c[3]) for c in calls[1:]] == [(session.cnn_key, "cnn"), ("demo:fake-vlm", "vlm")]


def test_store_unavailable_is_said_plainly(ctx, patches):
    out = _run(ctx, [patches[0]])
    session = out["session"]
    it = session.items[0]
    it.vlm = SimpleNamespace(label="benign" if it.cnn.label == "malignant" else "malignant", prob_malignant=0.5)

    class Ctx(SimpleNamespace):
        @property
        def store(self):
            raise ModuleNotFoundError("No module named 'histoapp.store'")

    msg = tab.send_to_annotation(Ctx(settings=ctx.settings, registry=ctx.registry), session)
    assert "unavailable" in msg and "nothing was sent" in msg


def test_cnn_and_vlm_side_by_side(tmp_path, trained_run, vlm_run, patches):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "tiny").symlink_to(trained_run / "tiny")
    (runs / "tinyvlm").symlink_to(vlm_run / "tinyvlm")
    settings = Settings(runs_dir=runs, data_dir=tmp_path / "data")
    registry = ModelRegistry(settings, assets_dir=tmp_path / "none", hub_models=[])
    ctx = SimpleNamespace(settings=settings, registry=registry, models=LocalModels(registry))
    cnn_choices, cnn_default = runner.model_choices(ctx, "cnn")
    vlm_choices, vlm_default = runner.model_choices(ctx, "vlm")
    assert cnn_default == "run:tiny/resnet18/all/fold0" and vlm_default == "run:tinyvlm/tiny-lora/all/fold0"
    out = _run(ctx, [patches[2]], vlm_key=vlm_default)
    assert out["errors"] == ""
    for side in ("cnn", "vlm"):
        assert set(out[f"{side}_label"]["value"]) == {"benign", "malignant"}
        assert out[f"{side}_img"].size == (view.OVERLAY_MIN_SIDE, view.OVERLAY_MIN_SIDE) and "ms" in out[f"{side}_info"]
    answer = out["vlm_answer"]
    if isinstance(answer, dict):  # the tiny VLM may abstain: then no answer words (issue 23, item 4)
        assert answer["value"] == "" and "abstains" in answer["label"]
        assert "nothing to explain" in out["vlm_info"] and "agree" not in out["agreement"]
    else:
        assert isinstance(answer, str) and "attention" in out["vlm_info"]
        assert ("agree" in out["agreement"]) or ("disagree" in out["agreement"])


def test_sent_patch_lands_in_the_real_store_disagreement_queue(ctx, patches, tmp_path):
    from histoapp.store import open_store

    out = _run(ctx, [patches[0]])
    session = out["session"]
    it = session.items[0]
    flip = "benign" if it.cnn.label == "malignant" else "malignant"
    it.vlm = SimpleNamespace(label=flip, prob_malignant=0.0 if flip == "benign" else 1.0)
    session.vlm_key = "demo:demo-vlm"
    ctx.store = open_store(f"sqlite:///{tmp_path / 'ann.db'}")
    assert tab.send_to_annotation(ctx, session).startswith("✅ Sent 1")
    assert tab.send_to_annotation(ctx, session).startswith("✅ Sent 1")  # twice: the same image, not a duplicate
    (image_id,) = ctx.store.queue(None, mode="disagreement")
    preds = {p["kind"]: p for p in ctx.store.predictions(image_id)}
    names = ("benign", "malignant")  # the store keeps 0 / 1
    assert names[preds["cnn"]["label"]] == it.cnn.label and names[preds["vlm"]["label"]] == flip


def test_a_photo_gets_the_reason_instead_of_a_label_dimmed_bars_and_no_heat_map(ctx, tmp_path):
    from tests.trainer.trust.hostile import photo_scene

    photo = tmp_path / "holiday.png"
    photo_scene().save(photo)
    out = _run(ctx, [str(photo)])
    label = out["cnn_label"]
    assert label["show_heading"] is False and label["elem_classes"] == [view.ABSTAINED_CLASS]
    assert "no answer" in label["label"] and set(label["value"]) == {"benign", "malignant"}
    assert "No answer" in out["cnn_info"] and "not an H&E patch" in out["cnn_info"]
    assert "Grad-CAM for class" not in out["cnn_info"] and "No heat map shown" in out["cnn_info"]
    item = out["session"].items[0]
    assert list(out["cnn_img"].getdata()) == list(view.display(item.image).getdata())  # the bare photo
    # In the batch table and its CSV: the reason, and "no answer" for the label.
    patch = tmp_path / "patch.png"
    _write_patch(patch)
    many = _run(ctx, [str(photo), str(patch)])
    photo_row, patch_row = many["table"]["value"]  # on screen: readable columns, the short reason in Notes
    cols = view.VIEW_COLUMNS
    assert photo_row[cols.index("CNN")] == view.NO_ANSWER and "CNN: " in photo_row[cols.index("Notes")]
    assert "CNN: " not in patch_row[cols.index("Notes")] and patch_row[cols.index("CNN")] != view.NO_ANSWER
    photo_row, patch_row = view.table_rows(many["session"])  # the CSV's rows: the full reason
    cols = view.TABLE_COLUMNS
    assert photo_row[cols.index("cnn_label")] == view.NO_ANSWER
    assert "H&E" in photo_row[cols.index("cnn_abstain_reason")]
    assert patch_row[cols.index("cnn_abstain_reason")] == "" and patch_row[cols.index("cnn_label")] != view.NO_ANSWER


def _write_patch(dest):
    import numpy as np

    from trainer.data.synthetic import render_patch

    render_patch(np.random.default_rng(4), 64, True, 4, "40X").save(dest)


def test_tta_gives_the_spread_and_its_cost(ctx, patches):
    out = _run(ctx, [patches[0]], tta=True)
    pred = out["session"].items[0].cnn
    assert pred.tta.views == 8 and pred.tta.min <= pred.prob_malignant + 1e-6 <= pred.tta.max + 2e-6
    assert (
        "Uncertainty over 8 flips/rotations" in out["cnn_info"]
        and "8 flips / rotations in one batch" in out["cnn_info"]
    )
    off = tab.toggle_tta(ctx, out["session"], False, "Grad-CAM", tab.PREDICTED_CLASS, 0.5)
    assert off["session"].tta is False


def test_magnification_is_read_from_the_file_name_unless_chosen(ctx, patches, tmp_path):
    import shutil

    src = patches[0]
    named = tmp_path / "SOB_M_DC-14-2523-400-001.png"
    tagged = tmp_path / "upload_100X_7.png"
    plain = tmp_path / "patch.png"
    for dst in (named, tagged, plain):
        shutil.copyfile(src, dst)
    assert uploads.read_upload(ctx, str(named), None).magnification == "400X"
    assert uploads.read_upload(ctx, str(tagged), None).magnification == "100X"
    assert uploads.read_upload(ctx, str(plain), None).magnification is None
    assert uploads.read_upload(ctx, str(tagged), "40X").magnification == "40X"


def test_example_buttons_are_named_apart_from_their_file_names(tmp_path):
    from histoapp.ui.examples import list_examples

    for name in ("breakhis_benign_adenosis_40X_patient14-22549AB.jpg", "idc_malignant_patient8863_x1001_y1051.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "README.md").write_text("not an example")
    found = {e["title"]: e for e in list_examples(tmp_path)}
    assert set(found) == {"benign · adenosis · 40X · patient14-22549AB", "malignant · patient8863 · x1001 · y1051"}
    assert found["benign · adenosis · 40X · patient14-22549AB"]["magnification"] == "40X"
    assert found["malignant · patient8863 · x1001 · y1051"]["label"] == "malignant"
    assert [e["dataset"] for e in list_examples(tmp_path)] == ["idc", "breakhis"]  # grouped, IDC first


def test_shipped_example_titles_are_whole_distinct_and_grouped_by_dataset():
    """Issue 23: titles were cut by Gradio ("... patient14-25...") and IDC and BreakHis examples interleaved."""
    from histoapp.ui.examples import TITLE_MAX, list_examples

    examples = list_examples()
    titles = [e["title"] for e in examples]
    assert titles and len(set(titles)) == len(titles) and max(map(len, titles)) <= TITLE_MAX
    datasets = [e["dataset"] for e in examples]
    assert datasets == sorted(datasets, key=["idc", "breakhis"].index)


def _said(label, p, abstain=None):
    return SimpleNamespace(label=label, prob_malignant=p, abstain=abstain, abstain_reason=abstain, answer=label)


def test_no_agreement_or_answer_words_for_a_model_that_abstains(ctx):
    """Issue 23: both models abstaining still read "agree: benign"; an abstaining CNN "CNN says malignant"; a
    batch "agree on all 12 patches" with 4 abstentions; the VLM's free text "benign" while it abstained."""
    one = tab.Session(
        items=[uploads.Item("a.png", cnn=_said("malignant", 0.51, "uncertain"), vlm=_said("benign", 0.2))]
    )
    text, send = view.agreement(ctx, one)
    assert "No comparison" in text and "CNN abstains" in text and send["visible"] is False
    assert not any(w in text for w in ("agree", "says", "malignant", "benign"))
    both = tab.Session(
        items=[uploads.Item("b.png", cnn=_said("benign", 0.4, "uncertain"), vlm=_said("benign", 0.4, "ood"))]
    )
    text, _ = view.agreement(ctx, both)
    assert "CNN and the VLM abstain" in text and "agree" not in text and "benign" not in text
    assert view.answer(both.items[0].vlm) == {
        "value": "",
        "label": "VLM answer (free text): none, the VLM abstains",
        "__type__": "update",
    }

    batch = tab.Session(
        items=[uploads.Item(f"{i}.png", cnn=_said("benign", 0.1), vlm=_said("benign", 0.1)) for i in range(2)]
        + [uploads.Item("x.png", cnn=_said("malignant", 0.6, "uncertain"), vlm=_said("benign", 0.1))]
    )
    text, _ = view.agreement(ctx, batch)
    assert "agree on all 2 patches both answered" in text and "1 patch(es) with an abstention" in text
    rows = view.table_rows(batch)
    assert rows[2][2] == view.NO_ANSWER and rows[2][-2] == ""  # no label, no agree cell
    assert [r[-2] for r in rows[:2]] == ["yes", "yes"]
