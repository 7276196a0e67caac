"""About tab: the study, the models' cards (each bundled model's ``card.md``), and the disclaimer."""

import gradio as gr

from histoapp.ui.context import AppContext

ABOUT = """
### About histoapp
histoapp re-implements **Zhaksylyk et al., "Assessing CNNs and LoRA-fine-tuned vision-language models for
breast cancer histopathology image classification"**, *J. Imaging* 2026, 12(4):168
([doi:10.3390/jimaging12040168](https://doi.org/10.3390/jimaging12040168)) and turns it into a tool:
CNN baselines (AlexNet, VGG19, ResNet34) against vision-language models (Qwen2-VL-2B, SmolVLM) with linear
probing and LoRA, evaluated with 5-fold patient-level cross-validation on BreakHis at 40x/100x/200x/400x.

- **Predict** — a CNN and a VLM side by side on your patches, with Grad-CAM and attention maps.
- **Annotate** — pathologists label the patches the models disagree on.
- **Train / Dashboard** — run the study's cross-validation with the `trainer` library and compare with the paper.

**The bundled demo models** (a ResNet18 and a small Idefics3 VLM) were trained by this project's trainer on real
H&E: the IDC breast-cancer patches (23 patients; malignant = invasive ductal carcinoma in the 50x50 patch, benign =
no IDC in it), not on BreakHis; their cards below give the data, the measured cross-validation and what they are not.

**Disclaimer.** The models served here are research and teaching demos. They are **not diagnostic devices**
and must not be used for clinical decisions.
"""


def build(ctx: AppContext) -> None:
    gr.Markdown(ABOUT)
    gr.Markdown("### Model cards")
    try:
        demos = ctx.registry.demo_models()
        runs = ctx.registry.run_models()
    except Exception as exc:  # the About tab must render even if the model folders are broken
        gr.Markdown(f"⚠️ Model cards could not be read: {exc}")
        return
    if not demos:
        gr.Markdown("No bundled demo model was found in `assets/models/`.")
    for entry in demos:
        with gr.Accordion(entry.name, open=len(demos) == 1):
            gr.Markdown(entry.card or "*(this model has no card.md)*")
    if runs:
        gr.Markdown(
            f"Also available in Predict: **{len(runs)}** checkpoint(s) from finished runs in `{ctx.settings.runs_dir}` "
            "(each fold's best-on-validation weights; their test metrics are in the model list)."
        )
