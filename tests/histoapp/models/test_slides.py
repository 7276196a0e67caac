"""The Slide runner (histoapp/models/slides.py) on a generated pyramidal TIFF of real IDC tissue, with the bundled
demo CNN: open, score, tiles near a point with their Grad-CAM, exports, the uncertain tiles; the slide cache's
ids; and every bad input refused with its reason."""

from types import SimpleNamespace

import numpy as np
import pytest

from histoapp.models import slides
from histoapp.models.ops import LocalModels
from histoapp.models.registry import ModelRegistry
from histoapp.settings import Settings
from tests import slide_data


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slides")
    settings = Settings(runs_dir=tmp / "runs", data_dir=tmp / "data")
    registry = ModelRegistry(settings, hub_models=[])
    return SimpleNamespace(settings=settings, registry=registry, models=LocalModels(registry))


@pytest.fixture(scope="module")
def scored(ctx, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slide")
    src = slide_data.idc_slide(tmp / "patient.tif", window=600)
    session = slides.open_upload(src, tmp / "kept", "alice")
    seen = []
    result = slides.score(
        ctx, session, "cnn", ctx.registry.default_key("cnn"), progress=lambda d, t: seen.append((d, t))
    )
    return session, result, seen


def test_open_score_and_progress(scored):
    session, result, seen = scored
    assert session.path.exists() and session.path.parent.name == session.id  # the app's own copy, under its id
    assert slides.ID_PATTERN.match(session.id)
    assert seen[-1][0] == seen[-1][1] == len(result.tiles) > 0
    assert result.summary["tissue_tiles"] > 0 and session.results["cnn"] is result


def test_tiles_near_a_point_and_their_gradcam(ctx, scored):
    session, result, _ = scored
    t0 = result.scored[0]
    near = slides.tiles_near(result, t0.x + 1, t0.y + 1, k=4)
    assert near[0] is t0 and len(near) == 4 and all(t.tissue for t in near)
    preds = slides.explain_tiles(ctx, session, "cnn", near)
    assert len(preds) == 4 and all(p.explanation is not None for p in preds)
    assert preds[0].explanation.heatmap.shape == (t0.height, t0.width)


def test_exports_and_uncertain(scored, tmp_path):
    import json

    session, result, _ = scored
    csv, png, geo = slides.exports(session, "cnn", tmp_path)
    assert csv.read_text().splitlines()[0].startswith("index,col,row,x,y,width,height")
    assert png.stat().st_size > 0 and json.loads(geo.read_text())["type"] == "FeatureCollection"
    done = slides.uncertain_patches(session, "cnn", 3, tmp_path / "q")
    assert [t for _, t in done] == result.uncertain(3) and all(p.exists() for p, _ in done)


def test_disagreement_needs_both_and_is_the_difference(scored):
    session, result, _ = scored
    assert slides.disagreement(session, 64) is None
    both = slides.SlideSession("x" * 16, "s", session.path, None, session.slide, {"cnn": result, "vlm": result})
    diff = slides.disagreement(both, 64)
    assert np.nanmax(diff) == 0.0 and np.isnan(diff).any() == np.isnan(result.heatmap(64)).any()


def test_cache_by_id_and_owner_only(tmp_path):
    cache = slides.SlideCache(kept=2)
    made = []
    for i in range(3):
        sid = slides.new_id()
        (tmp_path / sid).mkdir()
        (tmp_path / sid / "s.tif").write_bytes(b"x")
        made.append(slides.SlideSession(sid, f"s{i}", tmp_path / sid / "s.tif", "alice", SimpleNamespace()))
        cache.add(made[-1])
    assert not made[0].path.exists() and made[1].path.exists()  # the dropped slide's copy is deleted
    assert cache.get(made[2].id, "alice") is made[2]
    for bad, owner in ((made[0].id, "alice"), (made[2].id, "bob"), (made[2].id, None), ("../../etc/passwd", "alice")):
        with pytest.raises(KeyError):
            cache.get(bad, owner)
    assert len(cache) == 2  # the oldest was dropped


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda d: slide_data.truncated(slide_data.idc_slide(d / "a.tif", 300), d / "t.tif"), "truncated"),
        (lambda d: slide_data.huge_png(d / "huge.png"), r"refused.*(pixels|MP)"),
        (lambda d: slide_data.write_pyramid(d / "n.tif", np.zeros((300, 300, 3), np.uint8), mpp=None), "no scale"),
        (lambda d: (d / "x.svs").write_bytes(b"not a slide" * 20) and d / "x.svs", "unsupported format"),
    ],
)
def test_bad_inputs_refused_with_reason_and_nothing_kept(tmp_path, make, says):
    src = make(tmp_path)
    with pytest.raises(slides.SlideRefused, match=says) as refused:
        slides.open_upload(src, tmp_path / "kept", None)
    assert str(tmp_path) not in str(refused.value)  # the file's name, never a server path
    assert not any((tmp_path / "kept").glob("*/*"))  # the copy of a refused file is removed


def test_no_scale_given_by_the_user(tmp_path):
    src = slide_data.write_pyramid(tmp_path / "n.tif", slide_data.idc_canvas(window=300)[0], mpp=None)
    assert slides.open_upload(src, tmp_path / "k", None, magnification="10X").slide.mpp == pytest.approx(1.0)
    assert slides.open_upload(src, tmp_path / "k", None, mpp=4.0).slide.mpp == 4.0


def test_no_tissue_is_said(ctx, tmp_path):
    session = slides.open_upload(slide_data.blank_slide(tmp_path / "glass.tif", 300), tmp_path / "k", None)
    result = slides.score(ctx, session, "cnn", ctx.registry.default_key("cnn"))
    assert result.summary["tissue_tiles"] == 0 and any("no tissue" in n for n in result.notes)
