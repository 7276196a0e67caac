"""Explanations shown beside predictions: Grad-CAM family maps for CNNs (``cam``, the ``grad-cam`` package),
label-token attention maps for VLMs (``vlm_attention``), and the heatmap overlay (``overlay``)."""
