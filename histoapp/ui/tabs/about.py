"""About tab: the study, the models' cards, and the disclaimer."""
import gradio as gr

ABOUT = """
### About histoapp
histoapp re-implements **Zhaksylyk et al., "Assessing CNNs and LoRA-fine-tuned vision-language models for
breast cancer histopathology image classification"**, *J. Imaging* 2026, 12(4):168
([doi:10.3390/jimaging12040168](https://doi.org/10.3390/jimaging12040168)) and turns it into a tool:
CNN baselines (AlexNet, VGG19, ResNet34) against vision-language models (Qwen2-VL-2B, SmolVLM) with linear
probing and LoRA, evaluated with 5-fold patient-level cross-validation on BreakHis at 40x/100x/200x/400x.

**Disclaimer.** The models served here are research and teaching demos. They are **not diagnostic devices**
and must not be used for clinical decisions.
"""


def build(ctx) -> None:
    gr.Markdown(ABOUT)
