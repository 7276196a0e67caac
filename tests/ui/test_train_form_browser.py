"""The Train tab's form in a real browser (no run is launched): fields shown only for the families they apply to,
and a run name stamped at launch rather than when the page was drawn."""

import pytest

from histoapp.settings import Settings

pytestmark = pytest.mark.browser


def test_lora_fields_only_for_vlms_and_pretrained_only_for_cnns(serve_app, page, tmp_path):
    page.goto(serve_app(Settings(runs_dir=tmp_path / "runs", data_dir=tmp_path / "data")))
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Preset").wait_for()
    page.get_by_role("radio", name="cnn", exact=True).check()
    page.get_by_label("LoRA r").wait_for(state="hidden")
    assert page.get_by_label("ImageNet-pretrained").is_visible()
    page.get_by_role("radio", name="vlm", exact=True).check()
    page.get_by_label("LoRA r").wait_for(state="visible")
    assert page.get_by_label("LoRA dropout").is_visible()
    page.get_by_label("ImageNet-pretrained").wait_for(state="hidden")
    page.get_by_role("radio", name="cnn", exact=True).check()
    page.get_by_label("LoRA r").wait_for(state="hidden")
