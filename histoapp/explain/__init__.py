"""Explanations shown beside predictions: Grad-CAM family maps for CNNs (``cam``, the ``grad-cam`` package),
label-token attention maps for VLMs (``vlm_attention``), and the heatmap overlay (``overlay``)."""

# Display name -> pytorch_grad_cam class name (here, torch-free, so the UI can list them without importing torch).
CAM_METHODS: dict[str, str] = {
    "Grad-CAM": "GradCAM",
    "Grad-CAM++": "GradCAMPlusPlus",
    "Score-CAM": "ScoreCAM",
    "Eigen-CAM": "EigenCAM",
}
DEFAULT_METHOD = "Grad-CAM"
