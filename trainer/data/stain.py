"""Optional H&E stain normalisation (Macenko or Reinhard, from ``torchstain``'s NumPy backend), fitted on a
reference patch. The bundled reference ``assets/stain_reference.png`` is a 256 px synthetic H&E-like patch
written by ``make_reference`` (no real slide may be redistributed here); for real work pass a typical patch of
your own data as ``reference``.

A patch that cannot be normalised (nearly blank, one colour) keeps its original colours: the first such
patch in a process gives a warning, later ones are only counted (``failures``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_REFERENCE = Path(__file__).with_name("assets") / "stain_reference.png"
METHODS = ("macenko", "reinhard")
# Macenko's defaults (transmitted light, optical-density threshold for "tissue") and how much tissue we need.
_IO, _BETA, _MIN_TISSUE = 240, 0.15, 0.005


class StainNormalizationWarning(UserWarning):
    pass


def tissue_fraction(arr: np.ndarray) -> float:
    """Share of pixels dense enough in every channel to be stained tissue (Macenko's own criterion)."""
    od = -np.log((arr.reshape(-1, 3).astype(np.float64) + 1) / _IO)
    return float((od >= _BETA).all(axis=1).mean())


def check_method(method: str) -> str:
    """``method`` if it is one of ``METHODS``, else a ValueError: the one check, for the transform and for
    ``trainer evaluate --stain-normalization`` (which checks before any image is read)."""
    if method not in METHODS:
        raise ValueError(f"stain normalisation must be one of {', '.join(METHODS)} or none, not {method!r}")
    return method


class StainNormalize:
    """A picklable transform ``PIL RGB -> PIL RGB``. The normaliser is fitted lazily in each process (so
    DataLoader workers do not ship it around)."""

    def __init__(self, method: str = "macenko", reference: str | Path | None = None):
        self.method = check_method(method)
        self.reference = Path(reference) if reference else DEFAULT_REFERENCE
        if not self.reference.is_file():
            raise FileNotFoundError(f"stain reference patch not found: {self.reference}")
        self._norm = None
        self._warned = False
        self.failures = 0

    def __getstate__(self):
        return {**self.__dict__, "_norm": None}

    def _fitted(self):
        if self._norm is None:
            import torchstain  # imported here: only runs with stain normalisation pay for it

            from trainer.data.images import load_rgb

            ref = np.asarray(load_rgb(self.reference))
            if self.method == "macenko":
                norm = torchstain.normalizers.MacenkoNormalizer(backend="numpy")
            else:
                norm = torchstain.normalizers.ReinhardNormalizer(backend="numpy")
            with np.errstate(all="ignore"):
                norm.fit(ref)
            self._norm = norm
        return self._norm

    def normalize_array(self, arr: np.ndarray) -> np.ndarray:
        """Normalise an HxWx3 uint8 array; raises ValueError when the patch cannot be normalised."""
        norm = self._fitted()
        if self.method == "macenko" and tissue_fraction(arr) < _MIN_TISSUE:
            raise ValueError(f"too little stained tissue (< {_MIN_TISSUE:.1%} of pixels)")
        if self.method == "reinhard" and float(arr.reshape(-1, 3).std(axis=0).min()) < 1.0:
            raise ValueError("a flat (single-colour) patch")
        with np.errstate(all="ignore"):
            out = norm.normalize(arr, stains=False)[0] if self.method == "macenko" else norm.normalize(arr)
        out = np.asarray(out)
        # NaN turns into 0 when torchstain casts to uint8: an all-black result means it failed.
        if out.shape != arr.shape or out.max() == 0:
            raise ValueError("normalisation produced an empty image")
        return out.astype(np.uint8)

    def __call__(self, img: Image.Image) -> Image.Image:
        try:
            return Image.fromarray(self.normalize_array(np.asarray(img.convert("RGB"))), "RGB")
        except Exception as exc:  # noqa: BLE001 -- any failure keeps the original patch, by design
            self.failures += 1
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"{self.method} stain normalisation failed on a patch ({type(exc).__name__}: {exc}); "
                    "using the original colours (further failures in this process are only counted)",
                    StainNormalizationWarning,
                    stacklevel=2,
                )
            return img

    def __repr__(self) -> str:
        return f"StainNormalize(method={self.method!r}, reference={str(self.reference)!r})"


# Ruifrok & Johnston's colour-deconvolution matrix (rows: haematoxylin, eosin, DAB optical density per RGB
# channel; the one scikit-image's rgb2hed uses), rows normalised.
_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_RGB_FROM_HED = _RGB_FROM_HED / np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)
_HED_FROM_RGB = np.linalg.inv(_RGB_FROM_HED)


class HEDJitter:
    """Training stain augmentation in HED space (Tellez et al., "Quantifying the effects of data augmentation
    and stain color normalization...", MedIA 2019): each stain's concentration is scaled by U(1-s, 1+s) and
    shifted by U(-s, s), per image. It varies the stains themselves, where an RGB/HSV jitter varies brightness
    and hue; 0.05 is their "HED-light". Ten lines of NumPy rather than a dependency: torchstain's augmentor fits
    Macenko per image (slow, and unstable on 50 px patches), scikit-image would be a large install for one
    matrix. Random draws come from torch's generator, like torchvision's transforms (seeded by the trainer)."""

    def __init__(self, strength: float):
        self.strength = float(strength)

    def __call__(self, img: Image.Image) -> Image.Image:
        import torch

        s = self.strength
        alpha = torch.empty(3).uniform_(1 - s, 1 + s).numpy()
        beta = torch.empty(3).uniform_(-s, s).numpy()
        rgb = np.asarray(img.convert("RGB"), dtype=np.float64)
        hed = (-np.log((rgb + 1.0) / 256.0)).reshape(-1, 3) @ _HED_FROM_RGB
        out = np.exp(-((hed * alpha + beta) @ _RGB_FROM_HED)) * 256.0 - 1.0
        return Image.fromarray(out.reshape(rgb.shape).clip(0, 255).astype(np.uint8), "RGB")

    def __repr__(self) -> str:
        return f"HEDJitter(strength={self.strength})"


# Stain vectors (columns: haematoxylin, eosin; optical density per RGB channel) and 99th-percentile
# concentrations: torchstain's / Macenko's published reference values.
HE_REFERENCE = np.array([[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]])
MAX_C_REFERENCE = np.array([1.9705, 1.0308])


def beer_lambert(concentrations: np.ndarray, he: np.ndarray = HE_REFERENCE, io: int = _IO) -> np.ndarray:
    """RGB uint8 image from HxWx2 stain concentrations (H, E) under the Beer-Lambert law."""
    od = concentrations @ he.T
    return np.clip(io * np.exp(-od), 0, 255).astype(np.uint8)


def reference_concentrations(rng: np.random.Generator, size: int) -> np.ndarray:
    """H&E-like concentration maps: eosin stroma with pale lumina, haematoxylin nuclei (blurred ellipses)."""
    from PIL import ImageDraw, ImageFilter

    e = Image.fromarray((rng.uniform(0.45, 0.75) * 255 * np.ones((size, size))).astype(np.uint8), "L")
    h = Image.new("L", (size, size), 0)
    de, dh = ImageDraw.Draw(e), ImageDraw.Draw(h)
    for _ in range(3):  # lumina
        x, y, r = *rng.uniform(0, size, 2), rng.uniform(0.05, 0.12) * size
        de.ellipse([x - r, y - r, x + r, y + r], fill=20)
    for _ in range(int(size * size * 0.004)):  # nuclei
        x, y = rng.uniform(0, size, 2)
        rx, ry = rng.uniform(2, 5, 2) * size / 128
        dh.ellipse([x - rx, y - ry, x + rx, y + ry], fill=int(rng.uniform(150, 255)))
    e = np.asarray(e.filter(ImageFilter.GaussianBlur(2)), dtype=np.float64) / 255 * MAX_C_REFERENCE[1]
    h = np.asarray(h.filter(ImageFilter.GaussianBlur(1)), dtype=np.float64) / 255 * MAX_C_REFERENCE[0]
    noise = rng.normal(1.0, 0.05, (size, size, 2)).clip(0.8, 1.2)
    return np.stack([h, e], axis=-1) * noise


def make_reference(path: str | Path = DEFAULT_REFERENCE, size: int = 256, seed: int = 2018) -> Path:
    """Write the bundled reference patch: a synthetic H&E patch made with the Beer-Lambert law from the
    published reference stain vectors (so Macenko recovers standard H&E colours from it). Seeded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(beer_lambert(reference_concentrations(np.random.default_rng(seed), size)), "RGB").save(path)
    return path
