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


def test_tiny_spec_builds_once_into_the_cache(tmp_path, monkeypatch):
    from trainer.models.vlm.loading import resolve
    from trainer.models.vlm.tiny import parse_tiny_spec

    monkeypatch.setenv("HISTOAPP_TINY_VLM_CACHE", str(tmp_path))
    assert parse_tiny_spec("tiny:qwen2_vl:image_size=32,num_layers=1") == (
        "qwen2_vl",
        {"image_size": 32, "num_layers": 1},
    )
    folder, local = resolve("tiny:qwen2_vl:num_layers=1")
    assert local and (tmp_path / "qwen2_vl_num_layers=1" / "config.json").is_file()
    mtime = (tmp_path / "qwen2_vl_num_layers=1" / "model.safetensors").stat().st_mtime_ns
    assert resolve("tiny:qwen2_vl:num_layers=1")[0] == folder
    assert (tmp_path / "qwen2_vl_num_layers=1" / "model.safetensors").stat().st_mtime_ns == mtime  # not rebuilt
    with pytest.raises(ValueError, match="unknown option"):
        parse_tiny_spec("tiny:idefics3:layers=3")
    with pytest.raises(ValueError, match="family"):
        parse_tiny_spec("tiny:llava")


def test_vlm_configs_parse():
    from trainer.config import ExperimentConfig

    paper = ExperimentConfig.from_yaml("trainer/configs/paper_lora.yaml")
    lora = [m for m in paper.models if m.mode == "lora"]
    assert {m.name for m in lora} == {"HuggingFaceTB/SmolVLM-256M-Instruct", "Qwen/Qwen2-VL-2B-Instruct"}
    assert all((m.lora.r, m.lora.alpha, m.lora.dropout) == (16, 32, 0.05) and m.freeze_vision for m in lora)
    demo = ExperimentConfig.from_yaml("trainer/configs/demo_vlm.yaml")
    assert demo.models[0].family == "vlm" and demo.models[0].name.startswith("tiny:idefics3")
