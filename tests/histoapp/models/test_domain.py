"""What a model was trained on, and the warnings when an image lies outside it (issue 23)."""

import json

from histoapp.models.domain import Domain, crop_note, domain_of
from histoapp.models.registry import ModelEntry, ModelRegistry
from histoapp.settings import Settings

IDC = Domain(dataset="idc", magnification="40X", image_size=(50, 50), input_size=64)


def test_an_idc_model_warns_of_breakhis_magnification_and_scale():
    assert IDC.describe() == "Trained on: IDC patches of 50x50 px at 40X (model input 64 px)"
    warnings = IDC.warnings((350, 230), "100X")
    assert len(warnings) == 2
    assert "tagged 100X; the model was trained at 40X only" in warnings[0]
    assert "350x230 px, the training images 50x50 px" in warnings[1] and "4.6x smaller" in warnings[1]
    assert IDC.warnings((50, 50), "40X") == [] and IDC.warnings((60, 56), None) == []  # within 1.25x, no tag
    assert "1.7x larger" in IDC.warnings((30, 30), None)[0]


def test_pooled_zero_shot_and_unrecorded_models():
    pooled = Domain(dataset="breakhis", magnification="all", image_size=(700, 460), input_size=224)
    assert "BreakHis images of 700x460 px at every magnification" in pooled.describe()
    assert pooled.warnings((700, 460), "200X") == []  # trained on every magnification
    assert "zero-shot" in Domain(zero_shot=True).describe() and Domain(zero_shot=True).warnings((50, 50), "40X") == []
    assert (
        Domain().describe() == "Trained on: not recorded in this checkpoint" and Domain().warnings((9, 9), "40X") == []
    )


def test_only_a_non_square_image_says_its_heat_map_covers_the_central_square():
    assert crop_note((350, 230)) == (
        "Only the central 230x230 px square of this 350x230 px image was seen (the blue strips were not)."
    )
    assert crop_note((50, 50)) == ""


def test_read_from_the_checkpoint_and_the_shipped_demo_models(tmp_path):
    (tmp_path / "engine.json").write_text(json.dumps({"dataset": "idc", "magnification": "40X", "input_size": 64}))
    entry = ModelEntry("run:x", "x", "cnn", "run", tmp_path)
    assert domain_of(entry) == Domain(dataset="idc", magnification="40X", input_size=64)
    assert domain_of(ModelEntry("hub:y", "y", "vlm", "hub")).zero_shot
    registry = ModelRegistry(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"), hub_models=[])
    demos = registry.demo_models()
    assert len(demos) == 2 and all(domain_of(e) == IDC for e in demos)
