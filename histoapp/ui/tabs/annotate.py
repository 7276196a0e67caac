"""Annotate tab: pathologists' review-and-label queue backed by the annotation database."""
import gradio as gr


def build(ctx) -> None:
    gr.Markdown("### Annotate\nA review queue for pathologists: label patches benign/malignant and by subtype, "
                "review model disagreements; labels are stored in a database. *Coming in the Annotation issue.*")
