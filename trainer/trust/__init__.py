"""Knowing when not to answer (issue 13): every model's answer comes with an OOD score, a calibrated
probability and, when it should not be believed, the reason.

- ``tissue.py``: cheap image checks (size, tissue share, H&E colours), as whole-slide-image toolkits do;
- ``ood.py``: Mahalanobis OOD score on the prediction pass's penultimate features (Lee et al. 2018);
- ``calibration.py``: temperature scaling fitted on the validation split (Guo et al. 2017);
- ``abstain.py``: THE abstention rule (reason or None), bounds from ``TrustConfig`` (``trainer/config.py``);
- ``assess.py``: logits + features (+ image checks) -> calibrated probabilities, OOD flags, abstentions;
- ``tta.py``: flips / 90-degree rotations for the spread of P(malignant);
- ``reference.py``: the checkpoint's trust files (``trust.safetensors`` + ``trust.json``, no pickle);
- ``fit.py``: fitting them at the end of training or for an existing checkpoint (``trainer calibrate``).

Only ``fit.py`` runs a model; the rest is numpy (the app's page build imports none of it)."""
