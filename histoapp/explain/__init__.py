"""The drawing of an explanation (``overlay``: a heatmap blended onto the patch). The explanations themselves and
their scores are the trainer's (``trainer.explain``)."""
