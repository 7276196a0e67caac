"""Explanations of a model's predictions and how far to trust them: Grad-CAM family maps for CNNs (``cam``, the
``grad-cam`` package), label-token attention maps for VLMs (``vlm_attention``), one interface over both
(``base``), and the measurements of a map (``faithfulness``: ROAD perturbation; ``sanity``: cascading weight
randomisation; ``pointing``: map mass inside a lesion mask; ``evaluate`` / ``report``: ``trainer explain-eval``'s
table). The app draws the maps (``histoapp.explain.overlay``) and shows the scores; it never computes them."""

# Display name -> pytorch_grad_cam class name (here, torch-free, so the UI can list them without importing torch).
CAM_METHODS: dict[str, str] = {
    "Grad-CAM": "GradCAM",
    "Grad-CAM++": "GradCAMPlusPlus",
    "Score-CAM": "ScoreCAM",
    "Eigen-CAM": "EigenCAM",
}
DEFAULT_METHOD = "Grad-CAM"
