import numpy as np
import pytest

from histoapp.explain.overlay import overlay
from histoapp.models.registry import ModelRegistry
from histoapp.settings import Settings
from trainer.explain.cam import CAM_METHODS, explain_cnn_many, target_layer
from trainer.models.cnn import set_output_stride


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, trained_run):
    tmp = tmp_path_factory.mktemp("cam")
    reg = ModelRegistry(Settings(runs_dir=trained_run, data_dir=tmp / "data"), assets_dir=tmp / "none", hub_models=[])
    return reg.load(reg.list("cnn")[0].key)


def cam_of(adapter, image, **options):
    """One image's CAM (the batch call with a batch of one)."""
    return explain_cnn_many(adapter, [image], **options)[0]


@pytest.fixture(scope="module")
def patch(synthetic_records):
    from trainer.data.images import load_rgb

    img = load_rgb(next(r.path for r in synthetic_records if r.label == 1))
    return img.resize((80, 56))  # not square: the map must come back at the input's own size


@pytest.mark.parametrize("method", list(CAM_METHODS))
def test_cam_overlay_has_the_inputs_size_and_is_not_constant(loaded, patch, method):
    res = cam_of(loaded.adapter, patch, method=method, input_size=loaded.input_size)
    assert res.heatmap.shape == (patch.height, patch.width)
    assert res.heatmap.min() >= 0.0 and res.heatmap.max() <= 1.0
    seen = res.heatmap[:, 12:68]  # the centre crop the model saw
    assert seen.std() > 0.01, f"{method} map is constant"
    assert np.isclose(res.probs.sum(), 1.0, atol=1e-5)
    out = overlay(patch, res.heatmap, 0.5)
    assert out.size == patch.size
    assert np.asarray(out).std() > 0


def test_cam_prediction_matches_the_adapters_and_target_is_selectable(loaded, patch):
    from trainer.predict import forward
    from trainer.trust.calibration import softmax

    plain = softmax(forward(loaded, [patch])[0])[0]
    res = cam_of(loaded.adapter, patch, input_size=loaded.input_size)
    assert np.allclose(plain, res.probs, atol=1e-5)
    assert res.target == int(plain.argmax())
    other = 1 - res.target
    res2 = cam_of(loaded.adapter, patch, target=other, input_size=loaded.input_size)
    assert res2.target == other and not np.allclose(res2.heatmap, res.heatmap)


def test_target_layer_per_architecture():
    from torchvision import models

    r = models.resnet18(num_classes=2)
    assert target_layer(r, "resnet18", 224) is r.layer4[-1]
    assert target_layer(r, "resnet18", 64) is r.layer3[-1]  # layer4 would be 2x2
    os16 = set_output_stride(models.resnet18(num_classes=2), 16)
    assert target_layer(os16, "resnet18", 64) is os16.layer4[-1]  # 4x4 at stride 16
    v = models.vgg11(num_classes=2)
    assert isinstance(target_layer(v, "vgg11"), type(v.features[-2]))
    m = models.mobilenet_v3_small(num_classes=2)
    assert target_layer(m, "mobilenet_v3_small") is m.features


def test_unknown_method_is_refused(loaded, patch):
    with pytest.raises(ValueError, match="unknown CAM method"):
        cam_of(loaded.adapter, patch, method="Magic-CAM")


def test_target_layer_can_be_named(loaded, patch):
    res = cam_of(loaded.adapter, patch, input_size=loaded.input_size, layer="layer4")
    auto = cam_of(loaded.adapter, patch, input_size=loaded.input_size)
    assert res.heatmap.shape == auto.heatmap.shape and not np.allclose(res.heatmap, auto.heatmap)


@pytest.mark.parametrize("method", ["Grad-CAM", "Eigen-CAM"])
def test_a_batch_of_cams_is_each_images_own_cam(loaded, patch, synthetic_records, method):
    # One forward and backward pass for the batch (the app's batcher): each map and prediction as if alone.
    from trainer.data.images import load_rgb

    images = [patch, load_rgb(synthetic_records[0].path).resize((64, 64)), patch.rotate(90, expand=True)]
    batch = explain_cnn_many(loaded.adapter, images, method=method, input_size=loaded.input_size)
    for image, res in zip(images, batch, strict=True):
        one = cam_of(loaded.adapter, image, method=method, input_size=loaded.input_size)
        assert res.target == one.target and res.heatmap.shape == (image.height, image.width)
        assert np.allclose(res.probs, one.probs, atol=1e-5)
        # Batched and single convolutions round differently (oneDNN blocks a batch of 3 otherwise than 1, more so
        # with several threads), and the map's min-max scaling amplifies it: up to 6e-4 seen in a full CI run.
        # Another image's map in the wrong place would differ by tenths.
        assert np.allclose(res.heatmap, one.heatmap, atol=2e-3)
    targeted = explain_cnn_many(loaded.adapter, images, method=method, target=0, input_size=loaded.input_size)
    assert [r.target for r in targeted] == [0, 0, 0]


def _library_map(loaded, image, method: str, **knobs) -> np.ndarray:
    """The map of the grad-cam package used as its README shows (a model whose weights take gradients, no graph cut
    at the target layer, the CAM's own settings), on the app's input, mapped onto the image as the app does."""
    import copy

    import pytorch_grad_cam
    import torch

    from trainer.explain.cam import to_image_grid

    model = copy.deepcopy(loaded.adapter.module).requires_grad_(True)  # the registry's copy is frozen
    x = loaded.adapter.collate([loaded.adapter.transform(False, loaded.input_size)(image)], [0])["pixel_values"]
    layer = target_layer(model, getattr(loaded.adapter.config, "name", None), loaded.input_size)
    with getattr(pytorch_grad_cam, CAM_METHODS[method])(model=model, target_layers=[layer]) as cam:
        for name, value in knobs.items():
            setattr(cam, name, value)
        with torch.enable_grad():
            grid = cam(input_tensor=x, targets=None)[0]
    return to_image_grid(grid, *image.size)


@pytest.mark.parametrize("method", list(CAM_METHODS))
def test_the_apps_map_is_the_librarys(loaded, patch, method):
    # The app cuts the backward pass at the target layer and runs Score-CAM's masked inputs in batches: the map
    # must be the one the library gives on its own (Score-CAM: one masked input per pass, batch_size=1).
    ours = cam_of(loaded.adapter, patch, method=method, input_size=loaded.input_size)
    theirs = _library_map(loaded, patch, method, **({"batch_size": 1} if method == "Score-CAM" else {}))
    assert np.allclose(ours.heatmap, theirs, atol=1e-5)
