"""A checkpoint's trust reference: the OOD reference (``ood.py``), the temperature (``calibration.py``) and the
abstention bounds (``TrustConfig``) it was fitted with, saved beside the weights without pickle:
``trust.safetensors`` (plain float32 arrays) and ``trust.json`` (threshold, temperature, validation figures,
bounds). ``trainer.models.load_checkpoint`` loads it when present; an older checkpoint has none and still
works (no calibration, "no OOD reference")."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from trainer.config import TrustConfig
from trainer.rundir import TRUST_ARRAYS, TRUST_FILE, read_json, write_json_atomic
from trainer.trust.calibration import Calibration
from trainer.trust.ood import MahalanobisOOD

VERSION = 1


@dataclass
class TrustReference:
    config: TrustConfig = field(default_factory=TrustConfig)
    ood: MahalanobisOOD | None = None
    calibration: Calibration = field(default_factory=Calibration)
    info: dict = field(default_factory=dict)  # what it was fitted on (images, features, time, validation figures)

    @property
    def temperature(self) -> float:
        return float(self.calibration.temperature)

    @property
    def ood_threshold(self) -> float | None:
        return self.ood.threshold if self.ood is not None else None

    def ood_scores(self, features) -> np.ndarray | None:
        return None if self.ood is None or features is None else self.ood.score(features)

    # --- files ---------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.ood is not None:
            save_file(self.ood.arrays(), str(directory / TRUST_ARRAYS), metadata={"format": "np"})
        else:
            (directory / TRUST_ARRAYS).unlink(missing_ok=True)
        write_json_atomic(
            directory / TRUST_FILE,
            {
                "version": VERSION,
                "ood": self.ood.info() if self.ood is not None else None,
                "calibration": self.calibration.to_dict(),
                "config": asdict(self.config),
                "info": {"saved": time.time(), **self.info},
            },
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TrustReference | None:
        """The folder's trust reference; None when it has none (a checkpoint made before it existed)."""
        directory = Path(directory)
        path = directory / TRUST_FILE
        if not path.is_file():
            return None
        data = read_json(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a readable trust file (JSON)")
        ood = None
        if data.get("ood"):
            from safetensors.numpy import load_file

            arrays_path = directory / TRUST_ARRAYS
            if not arrays_path.is_file():
                raise FileNotFoundError(
                    f"{directory}: {TRUST_FILE} names an OOD reference but {TRUST_ARRAYS} is missing"
                )
            ood = MahalanobisOOD.from_arrays(load_file(str(arrays_path)), data["ood"])
        return cls(
            TrustConfig.from_dict(data.get("config") or {}, f"{path}:config"),
            ood,
            Calibration.from_dict(data.get("calibration") or {}),
            dict(data.get("info") or {}),
        )

    def summary(self) -> dict:
        """The figures a report shows: temperature, ECE / NLL before and after, OOD threshold."""
        c = self.calibration
        return {
            "temperature": c.temperature,
            "ece_before": c.ece_before,
            "ece_after": c.ece_after,
            "nll_before": c.nll_before,
            "nll_after": c.nll_after,
            "ood_threshold": self.ood_threshold,
            "ood_quantile": self.ood.quantile if self.ood is not None else None,
        }


def describe(reference: TrustReference | None) -> str:
    """One line for cards and the Predict tab."""
    if reference is None:
        return "no OOD reference, uncalibrated (a checkpoint made before the trust check)"
    parts = [f"temperature {reference.temperature:.3g}"]
    parts.append(
        f"OOD threshold {reference.ood_threshold:.4g} ({reference.ood.quantile:.1%} of validation scores)"
        if reference.ood is not None and reference.ood_threshold is not None
        else "no OOD reference"
    )
    return ", ".join(parts)
