"""The app's models: what can be predicted with (``registry``) and single-patch inference (``inference``)."""
