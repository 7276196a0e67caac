"""Decodable hostile images (issue 13): what the abstention rule must refuse, drawn with Pillow in milliseconds."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from trainer.data.synthetic import render_patch


def one_pixel() -> Image.Image:
    return Image.new("RGB", (1, 1), (190, 90, 160))


def blank_white() -> Image.Image:
    return Image.new("RGB", (256, 256), (255, 255, 255))


def random_noise(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (224, 224, 3), dtype=np.uint8))


def text_image() -> Image.Image:
    """A grayscale page of text."""
    img = Image.new("L", (320, 160), 250)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(["Invoice 2024-113", "Total due: 1,250.00", "Thank you for your order", "Page 1 of 2"]):
        draw.text((12, 14 + 34 * i), line, fill=20)
    return img


def photo_scene() -> Image.Image:
    """A photo-like landscape: a graded blue sky, green grass with texture, a yellow sun."""
    w, h = 320, 240
    rng = np.random.default_rng(1)
    arr = np.zeros((h, w, 3), dtype=np.float32)
    t = np.linspace(0, 1, 150)[:, None]
    arr[:150] = (np.array([70, 130, 230]) * (1 - t) + np.array([170, 205, 245]) * t)[:, None, :]
    arr[150:] = np.array([60, 150, 55]) + rng.normal(0, 14, (h - 150, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.ellipse([232, 24, 288, 80], fill=(255, 222, 70))
    for x in range(0, w, 40):  # a few darker tufts of grass
        draw.polygon([(x, 240), (x + 8, 180), (x + 16, 240)], fill=(40, 110, 40))
    return img


def upscaled_thumbnail(side: int = 12, size: int = 224, resample=Image.NEAREST) -> Image.Image:
    """An H&E-like patch shrunk to a ``side`` px thumbnail, then enlarged again (by pixel repetition by default,
    as image viewers and "zoom" tools do; ``Image.BICUBIC`` for a smooth enlargement)."""
    patch = render_patch(np.random.default_rng(2), 96, True, 4, "40X")
    return patch.resize((side, side), Image.BOX).resize((size, size), resample)


def smooth_upscaled_thumbnail() -> Image.Image:
    return upscaled_thumbnail(resample=Image.BICUBIC)


KINDS = {
    "1x1 pixel": one_pixel,
    "blank white": blank_white,
    "random noise": random_noise,
    "grayscale text": text_image,
    "photo-like scene": photo_scene,
    "upscaled thumbnail": upscaled_thumbnail,
}
# Known gap: a thumbnail enlarged smoothly keeps H&E colours and looks like IDC's own blurriest patches, to the
# image checks and (on the IDC ResNet18 folds) to the OOD score: it abstains only when the model is unsure.
SMOOTH_KINDS = {"smoothly upscaled thumbnail": smooth_upscaled_thumbnail}
