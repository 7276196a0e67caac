"""The annotation queue's modes: name -> what it shows; and what blind mode hides. Implemented by ``histoapp.store.queue``; kept here, free of
SQLAlchemy, so the Annotate tab lists them while the app starts without loading the database stack."""

# What the Annotate tab's blind mode hides while labelling and rating (the checkbox and the details say it).
BLIND_HIDES = "model predictions, source labels and the maps' faithfulness"

MODES = {
    "unlabelled": "not labelled by anyone yet",
    "mine": "not labelled by me yet (a second opinion)",
    "disagreement": "CNN and VLM disagree (largest gap first)",
    "uncertain": "most uncertain first (models' mean probability nearest 0.5)",
    "conflicts": "annotators disagree, not yet adjudicated",
    "all": "every image (relabel)",
}
