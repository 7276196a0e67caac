"""Decodable hostile images (issue 13): what the abstention rule must refuse, drawn with Pillow in milliseconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def one_pixel() -> Image.Image:
    return Image.new("RGB", (1, 1), (190, 90, 160))


def blank_white() -> Image.Image:
    return Image.new("RGB", (256, 256), (255, 255, 255))


def random_noise(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (224, 224, 3), dtype=np.uint8))


def translucent_noise(alpha: int = 128, size: int = 512, seed: int = 0) -> Image.Image:
    """Random colours saved with partial transparency (issue 23): composited on white, as every reader does, the
    averaged copy is a pale pink that the models took for benign tissue."""
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 4), dtype=np.uint8)
    arr[..., 3] = alpha
    return Image.fromarray(arr, "RGBA")


def noise_random_alpha(size: int = 512, seed: int = 1) -> Image.Image:
    """Random colours, each pixel with its own random transparency."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 4), dtype=np.uint8), "RGBA")


def palette_noise(size: int = 512, seed: int = 2, transparent: bool = True) -> Image.Image:
    """A palette (P mode) image of 256 random colours, one of them transparent."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "P")
    img.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
    if transparent:
        img.info["transparency"] = 0
    return img


def transparent_patch() -> Image.Image:
    """A real H&E patch made fully transparent: what a viewer shows (and the model is given) is blank white."""
    patch = real_patch().resize((256, 256)).convert("RGBA")
    patch.putalpha(0)
    return patch


def grayscale_alpha() -> Image.Image:
    """Grayscale text with an alpha channel (LA)."""
    img = text_image().convert("LA")
    img.putalpha(200)
    return img


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


# A real IDC patch (50x50, IDC in the tile), bundled with the app (assets/examples/README.md)
REAL_PATCH = Path(__file__).resolve().parents[3] / "assets" / "examples" / "idc_malignant_40X_patient13401.png"
# How thumbnails are enlarged: pixel repetition (image viewers' "zoom") and the smooth kernels
ENLARGE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def real_patch() -> Image.Image:
    return Image.open(REAL_PATCH).convert("RGB")


def upscaled_thumbnail(side: int = 12, size: int = 224, resample=Image.NEAREST, patch=None) -> Image.Image:
    """A real H&E patch shrunk to a ``side`` px thumbnail, then enlarged again (by pixel repetition by default,
    as image viewers and "zoom" tools do; ``Image.BICUBIC`` and the like for a smooth enlargement)."""
    return (patch or real_patch()).resize((side, side), Image.BOX).resize((size, size), resample)


def smooth_upscaled_thumbnail() -> Image.Image:
    return upscaled_thumbnail(resample=Image.BICUBIC)


def enlarged_thumbnails(sides=(4, 8, 12), sizes=(50, 64, 224, 512), patch=None) -> dict[str, Image.Image]:
    """Thumbnails of a real patch enlarged by every kernel of ``ENLARGE``: all too small to classify."""
    patch = patch or real_patch()
    return {
        f"{side} px -> {size} px, {name}": upscaled_thumbnail(side, size, kernel, patch)
        for side in sides
        for size in sizes
        for name, kernel in ENLARGE.items()
    }


KINDS = {
    "1x1 pixel": one_pixel,
    "blank white": blank_white,
    "random noise": random_noise,
    "grayscale text": text_image,
    "photo-like scene": photo_scene,
    "upscaled thumbnail": upscaled_thumbnail,
    "smoothly upscaled thumbnail": smooth_upscaled_thumbnail,
    # Transparency and palettes (issue 23): the checks judge the image as composited for the model.
    "translucent noise (RGBA, alpha 128)": translucent_noise,
    "faint noise (RGBA, alpha 64)": lambda: translucent_noise(64),
    "noise with random alpha": noise_random_alpha,
    "palette noise with a transparent colour": palette_noise,
    "palette noise": lambda: palette_noise(transparent=False),
    "fully transparent H&E patch": transparent_patch,
    "grayscale text with alpha (LA)": grayscale_alpha,
}
