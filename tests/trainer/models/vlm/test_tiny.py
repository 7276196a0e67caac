import pytest


def test_tiny_models_load_through_from_pretrained(tiny_vlms):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    for family, folder in tiny_vlms.items():
        processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True)
        assert model.config.model_type == family
        assert sum(p.numel() for p in model.parameters()) < 1_000_000  # tiny: seconds on a CPU
        image_token = "<image>" if family == "idefics3" else "<|image_pad|>"
        assert processor.tokenizer.convert_tokens_to_ids(image_token) == model.config.image_token_id
        assert processor.chat_template  # the family's chat template travels with the processor


def test_tokenizer_round_trips_text(tiny_vlms):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_vlms["qwen2_vl"], local_files_only=True)
    text = "Is this breast tissue benign or malignant? Ductal carcinoma, 123!"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_bad_family_or_size_is_refused(tmp_path):
    from trainer.models.vlm.tiny import build_tiny_vlm

    with pytest.raises(ValueError, match="family"):
        build_tiny_vlm("llava", tmp_path)
    with pytest.raises(ValueError, match="multiple"):
        build_tiny_vlm("idefics3", tmp_path, image_size=36, patch_size=8)
