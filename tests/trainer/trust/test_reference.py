"""The trust reference is saved as safetensors + JSON and loaded without pickle; a checkpoint without one
still loads (no OOD reference)."""

import json

import numpy as np
import pytest

from trainer.config import TrustConfig
from trainer.rundir import TRUST_ARRAYS, TRUST_FILE
from trainer.trust.calibration import Calibration
from trainer.trust.ood import MahalanobisOOD
from trainer.trust.reference import TrustReference, describe


def _reference():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, (100, 8)), rng.integers(0, 2, 100)
    ood = MahalanobisOOD.fit(x, y)
    ood.set_threshold(ood.score(x), 0.95)
    return TrustReference(TrustConfig(uncertain_low=0.4), ood, Calibration(temperature=1.7, n=100), {"x": 1}), x


def test_saved_as_safetensors_and_json_and_loaded_without_pickle(tmp_path, monkeypatch):
    import pickle

    ref, x = _reference()
    ref.save(tmp_path)
    assert (tmp_path / TRUST_ARRAYS).read_bytes()[:8] != b"\x80\x04\x95"  # not a pickle stream
    assert json.loads((tmp_path / TRUST_FILE).read_text())["calibration"]["temperature"] == 1.7

    def no_pickle(*a, **k):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    again = TrustReference.load(tmp_path)
    assert again.temperature == 1.7 and again.config.uncertain_low == 0.4 and again.info["x"] == 1
    assert np.allclose(again.ood_scores(x[:4]), ref.ood_scores(x[:4]))
    assert again.ood_threshold == pytest.approx(ref.ood_threshold)
    assert "temperature 1.7" in describe(again)


def test_absent_reference_and_a_missing_arrays_file(tmp_path):
    assert TrustReference.load(tmp_path) is None
    assert describe(None).startswith("no OOD reference")
    ref, _ = _reference()
    ref.save(tmp_path)
    (tmp_path / TRUST_ARRAYS).unlink()
    with pytest.raises(FileNotFoundError, match=TRUST_ARRAYS):
        TrustReference.load(tmp_path)
