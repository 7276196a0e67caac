"""The study's preprocessing: resize, augmentation (flips, 90-degree rotations, colour and stain jitter) for training,
ImageNet normalisation. Stain normalisation (torchstain, Macenko or Reinhard) is optional and applied first,
before augmentation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_transforms(
    size: int = 224,
    train: bool = False,
    normalize: bool = True,
    *,
    stain: str | None = None,
    stain_reference: str | Path | None = None,
    color_jitter: float = 0.1,
    hed_jitter: float = 0.0,
) -> Callable:
    """torchvision pipeline from an RGB PIL image to a (normalised) CHW float tensor.

    ``stain``: None, ``"macenko"`` or ``"reinhard"`` (fitted on ``stain_reference``, default the bundled patch).
    With a cached ``PatchDataset``, passing ``stain=`` to the dataset instead normalises once per image
    rather than every epoch (do not pass it to both). ``color_jitter``: training brightness, contrast and
    saturation change by up to that share, hue by a fifth of it (``data.color_jitter``); ``hed_jitter``: the
    training stain augmentation in HED space (``trainer.data.stain.HEDJitter``, ``data.hed_jitter``)."""
    steps: list = []
    if stain:
        from trainer.data.stain import StainNormalize

        steps.append(StainNormalize(stain, stain_reference))
    if train:
        steps += [
            T.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.8, 1.25)),
            T.RandomHorizontalFlip(),
            T.RandomVerticalFlip(),
            T.RandomChoice([T.RandomRotation((a, a)) for a in (0, 90, 180, 270)]),
            T.ColorJitter(
                brightness=color_jitter, contrast=color_jitter, saturation=color_jitter, hue=color_jitter / 5
            ),
        ]
        if hed_jitter:
            from trainer.data.stain import HEDJitter

            steps.append(HEDJitter(hed_jitter))
    else:
        steps += [T.Resize(size), T.CenterCrop(size)]
    steps.append(T.ToTensor())
    if normalize:
        steps.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return T.Compose(steps)
