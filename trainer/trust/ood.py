"""Out-of-distribution score: the Mahalanobis distance of an image's features to the nearest class of the
training images (Lee, Lee, Lee & Shin, "A Simple Unified Framework for Detecting Out-of-Distribution Samples
and Adversarial Attacks", NeurIPS 2018): class means and one tied covariance fitted on the training images'
penultimate features, score = min over classes of (f - mu_c)^T Sigma^-1 (f - mu_c). The covariance is the
Ledoit-Wolf shrinkage estimate (scikit-learn), well conditioned even with fewer images than feature dimensions.
Features wider than ``max_features`` (VGG/AlexNet: 4096) are first projected on their top principal axes.

The features are those of the prediction's own forward pass (``ModelAdapter.logits_and_features``), so scoring
costs one small matrix product per batch. Numpy only; saved as plain arrays (``trainer/trust/state.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHOD = "mahalanobis (Lee et al. 2018), tied covariance, Ledoit-Wolf shrinkage, min over class means"


@dataclass
class MahalanobisOOD:
    means: np.ndarray  # (C, k) class means in the (projected) feature space
    precision: np.ndarray  # (k, k) inverse of the tied covariance
    center: np.ndarray | None = None  # (D,) subtracted before ``projection``
    projection: np.ndarray | None = None  # (D, k) principal axes, when D > max_features
    threshold: float | None = None  # scores above it are OOD
    quantile: float | None = None  # the validation quantile the threshold is
    threshold_from: str = "validation"  # which images' scores set it ("validation", or "training" without any)

    @property
    def dim(self) -> int:
        return int(self.projection.shape[0] if self.projection is not None else self.means.shape[1])

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, max_features: int = 512) -> MahalanobisOOD:
        """Class means + tied covariance of training ``features`` (N, D) with class ``labels`` (N,)."""
        from sklearn.covariance import LedoitWolf

        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels)
        if x.ndim != 2 or len(x) != len(y) or len(x) < 2:
            raise ValueError(f"need (N, D) features with N >= 2 and one label each; got {x.shape} and {y.shape}")
        center = projection = None
        if x.shape[1] > max_features:
            center = x.mean(axis=0)
            # Principal axes from the covariance's eigenvectors (D x D, cheaper than an SVD of N x D for N > D).
            _, vectors = np.linalg.eigh(np.cov(x - center, rowvar=False))
            projection = vectors[:, ::-1][:, :max_features].copy()
            x = (x - center) @ projection
        classes = sorted({int(c) for c in y})
        means = np.stack([x[y == c].mean(axis=0) for c in classes])
        centred = x - means[np.searchsorted(classes, y)]
        precision = LedoitWolf(assume_centered=True).fit(centred).precision_
        f32 = lambda a: None if a is None else np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        return cls(f32(means), f32(precision), f32(center), f32(projection))

    def score(self, features) -> np.ndarray:
        """(N,) scores of (N, D) features: the squared Mahalanobis distance to the nearest class mean."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.shape[1] != self.dim:
            raise ValueError(f"features have {x.shape[1]} dimensions; this OOD reference was fitted on {self.dim}")
        if self.projection is not None:
            x = (x - self.center) @ self.projection
        best = None
        for mean in self.means:
            d = x - mean
            s = np.einsum("nk,nk->n", d @ self.precision, d)
            best = s if best is None else np.minimum(best, s)
        return best.astype(np.float64)

    def set_threshold(self, scores, quantile: float, source: str = "validation") -> float:
        scores = np.asarray(scores, dtype=np.float64)
        if not len(scores):
            raise ValueError("no scores to set the OOD threshold from")
        self.threshold = float(np.quantile(scores, quantile))
        self.quantile, self.threshold_from = float(quantile), source
        return self.threshold

    # --- plain arrays + JSON for the checkpoint (no pickle) ------------------------------------------
    def arrays(self, prefix: str = "ood.") -> dict[str, np.ndarray]:
        out = {f"{prefix}means": self.means, f"{prefix}precision": self.precision}
        if self.projection is not None:
            out[f"{prefix}center"], out[f"{prefix}projection"] = self.center, self.projection
        return out

    def info(self) -> dict:
        return {
            "method": METHOD,
            "feature_dim": self.dim,
            "projected_dim": int(self.means.shape[1]),
            "classes": int(self.means.shape[0]),
            "threshold": self.threshold,
            "quantile": self.quantile,
            "threshold_from": self.threshold_from,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], info: dict, prefix: str = "ood.") -> MahalanobisOOD:
        get = lambda k: arrays.get(prefix + k)  # noqa: E731
        if get("means") is None or get("precision") is None:
            raise ValueError("the OOD reference lacks its class means or precision matrix")
        f32 = lambda a: None if a is None else np.asarray(a, dtype=np.float32)  # noqa: E731
        return cls(
            f32(get("means")),
            f32(get("precision")),
            f32(get("center")),
            f32(get("projection")),
            threshold=info.get("threshold"),
            quantile=info.get("quantile"),
            threshold_from=info.get("threshold_from", "validation"),
        )
