"""The study's preprocessing: resize, augmentation (flips, 90-degree rotations, colour jitter) for training,
ImageNet normalisation. Stain normalisation (torchstain) is optional and applied before augmentation."""
from __future__ import annotations

from typing import Callable

from torchvision import transforms as T

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_transforms(size: int = 224, train: bool = False, normalize: bool = True) -> Callable:
    """torchvision pipeline from an RGB PIL image to a normalised CHW float tensor."""
    steps: list = [T.Resize(size), T.CenterCrop(size)] if not train else [T.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(0.8, 1.25))]
    if train:
        steps += [
            T.RandomHorizontalFlip(),
            T.RandomVerticalFlip(),
            T.RandomChoice([T.RandomRotation((a, a)) for a in (0, 90, 180, 270)]),
            T.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.02),
        ]
    steps.append(T.ToTensor())
    if normalize:
        steps.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return T.Compose(steps)
