"""The Slide tab's rendering: the heat map of P(malignant) over the slide's thumbnail (tiles that abstained or
were flagged out of distribution outlined apart), the CNN / VLM disagreement map, the summary, the galleries of
tiles, and the zoomable viewer's settings (OpenSeadragon, fed by ``histoapp.ui.slide_routes``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

PREFIX = "slide"  # the tile routes' path (histoapp.ui.slide_routes), relative to the page
THUMB_SIDE = 1024  # the thumbnail's longer side (the heat map is drawn at this size)
LAYER_SIDE = 1024  # the viewer's heat-map layer: its longer side
ABSTAIN_RGB = (128, 128, 128)  # outline of a tile whose model abstained
OOD_RGB = (0, 170, 255)  # outline of a tile flagged out of distribution
SIDE_NAMES = {"cnn": "CNN", "vlm": "VLM"}
LEGEND = (
    "Colours: P(malignant), blue 0 → yellow 0.5 → red 1; no colour: background, not scored. "
    "<span style='color:#808080'>■</span> grey outline: the model abstained; "
    "<span style='color:#00aaff'>■</span> blue outline: out of distribution. Click the map to see the tiles there."
)


@dataclass
class SlideView:
    """The Slide tab's state (one ``gr.State``): the opened slide's id in ``ctx.slides`` and what is on screen."""

    slide_id: str | None = None
    name: str = ""
    thumb_scale: float = 1.0  # thumbnail px per level-0 px
    errors: list[str] = field(default_factory=list)


def thumbnail(slide, side: int = THUMB_SIDE) -> Image.Image:
    return slide.thumbnail(side).convert("RGB")


def heat_rgba(heat: np.ndarray, size: tuple[int, int], alpha: float = 1.0) -> Image.Image:
    """The heat map coloured (``trainer.slide``'s ramp, as in its PNG export), transparent where NaN
    (background), resized to ``size`` cell for cell."""
    from trainer.slide.exports import colorize

    heat = np.asarray(heat, dtype=np.float32)
    rgb = colorize(heat)
    a = np.where(np.isnan(heat), 0, int(round(255 * float(alpha)))).astype(np.uint8)
    img = Image.fromarray(np.dstack([rgb, a]), "RGBA")
    return img.resize(size, Image.NEAREST)


def heat_overlay(thumb: Image.Image, heat: np.ndarray, opacity: float, result=None, scale: float = 1.0) -> Image.Image:
    """The thumbnail with the heat map blended at ``opacity``; with ``result``, its abstained and OOD tiles
    outlined (``scale``: thumbnail px per level-0 px)."""
    base = thumb.convert("RGBA")
    out = Image.alpha_composite(base, heat_rgba(heat, base.size, opacity)).convert("RGB")
    if result is not None:
        draw = ImageDraw.Draw(out)
        for t in result.tiles:
            colour = OOD_RGB if t.ood else ABSTAIN_RGB if t.abstain else None
            if colour is not None and t.tissue:
                box = (t.x * scale, t.y * scale, (t.x + t.width) * scale - 1, (t.y + t.height) * scale - 1)
                draw.rectangle(box, outline=colour, width=1 if box[2] - box[0] < 6 else 2)
    return out


def disagreement_image(thumb: Image.Image, diff: np.ndarray | None, opacity: float) -> Image.Image | None:
    """Where the CNN and the VLM disagree: |P_cnn - P_vlm| over the thumbnail (None unless both ran)."""
    if diff is None:
        return None
    return heat_overlay(thumb, diff, opacity)


def summary_md(name: str, results: dict) -> str:
    """The slide-level summary of each model's result (tissue area, share predicted malignant, abstentions)."""
    if not results:
        return ""
    lines = [f"#### {name}", "| | tiles | tissue | tissue area (mm²) | predicted malignant | abstained | OOD |"]
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for side, result in results.items():
        s = result.summary
        area = s.get("tissue_area_mm2")
        share = s.get("share_malignant")
        lines.append(
            f"| {SIDE_NAMES.get(side, side)} | {s.get('tiles', len(result.tiles))} | {s.get('tissue_tiles', '')} | "
            f"{'' if area is None else f'{float(area):.2f}'} | {'' if share is None else f'{100 * float(share):.1f} %'}"
            f" | {s.get('abstained', '')} | {s.get('ood', '')} |"
        )
    return "\n".join(lines)


def caption(side: str, tile, pred=None) -> str:
    """A tile's caption: where it lies (level-0 px), P(malignant), and why its model abstained."""
    p = tile.prob_malignant if pred is None else pred.prob_malignant
    text = f"{SIDE_NAMES.get(side, side)} · x={int(tile.x)}, y={int(tile.y)} · P(malignant) {float(p):.2f}"
    why = tile.abstain if pred is None else getattr(pred, "abstain", None)
    if why:
        text += f" · abstained ({why})"
    if tile.ood:
        text += " · OOD"
    return text


def explained_tile(image: Image.Image, pred, opacity: float) -> Image.Image:
    """A tile with its model's map (Grad-CAM / attention) blended on; the bare tile when there is none."""
    from histoapp.explain.overlay import overlay

    image = image.convert("RGB")
    if image.width < 128:  # a 50 px tile is too small to read: shown larger, pixel for pixel
        f = -(-128 // image.width)
        image = image.resize((image.width * f, image.height * f), Image.NEAREST)
    if pred is None or pred.explanation is None or getattr(pred, "abstain", None):
        return image
    return overlay(image, pred.explanation.heatmap, float(opacity))


def viewer_value(slide_id: str | None, sides: list[str], opacity: float, focus: tuple | None = None) -> str:
    """The viewer's settings as JSON (the gr.HTML's value its script reads): the slide's Deep Zoom descriptor and
    the heat-map layers, as URLs relative to the page, served by ``histoapp.ui.slide_routes``."""
    if not slide_id:
        return ""
    layers = {s: f"{PREFIX}/{slide_id}/heat/{s}.png" for s in sides}
    return json.dumps(
        {"id": slide_id, "dzi": f"{PREFIX}/{slide_id}/image.dzi", "layers": layers, "opacity": float(opacity)}
        | ({"focus": list(focus)} if focus else {})
    )


VIEWER_TEMPLATE = "<div class='slide-osd' style='width:100%;height:520px;background:#222'></div>"

# OpenSeadragon is loaded once from the app's own copy (assets/vendor/openseadragon); each new value (a slide, a
# layer, an opacity) updates the viewer in place, so panning and zoom are kept. A click (not a drag) on the
# slide sends its level-0 coordinates to the hidden #slide-click box, whose change asks for the tiles there.
VIEWER_JS = r"""
const base = new URL('.', window.location.href);
const rel = (p) => new URL(p, base).toString();
const loadOsd = () => new Promise((ok, bad) => {
  if (window.OpenSeadragon) return ok();
  const s = document.createElement('script');
  s.src = rel('slide/static/openseadragon.min.js');
  s.onload = ok; s.onerror = bad; document.head.appendChild(s);
});
const show = async () => {
  const box = element.querySelector('.slide-osd');
  let cfg = null;
  try { cfg = props.value ? JSON.parse(props.value) : null; } catch (e) { cfg = null; }
  if (!cfg) { if (element._osd) { element._osd.destroy(); element._osd = null; } return; }
  await loadOsd();
  const layer = Object.values(cfg.layers || {})[0];
  const addLayer = (v) => {
    element._heat = null;
    if (layer) v.addTiledImage({tileSource: {type: 'image', url: rel(layer)}, x: 0, y: 0, width: 1,
      opacity: cfg.opacity, success: (ev) => { element._heat = ev.item; }});
  };
  if (!element._osd || element._osdId !== cfg.id) {
    if (element._osd) element._osd.destroy();
    box.innerHTML = '';
    const v = OpenSeadragon({
      element: box, prefixUrl: rel('slide/static/images/'), tileSources: rel(cfg.dzi),
      drawer: 'canvas',  // not WebGL: without a GPU (software GL) each frame took up to 1 s (bench/slide_viewer.py)
      showNavigator: true, crossOriginPolicy: false, maxZoomPixelRatio: 4,
      gestureSettingsMouse: {clickToZoom: false, dblClickToZoom: true},  // a click picks tiles
    });
    element._osd = v; element._osdId = cfg.id;
    v.addHandler('open', () => addLayer(v));
    v.addHandler('canvas-click', (ev) => {
      if (!ev.quick) return;
      const img = v.world.getItemAt(0); if (!img) return;
      const p = img.viewerElementToImageCoordinates(ev.position);
      const input = document.querySelector('#slide-click textarea, #slide-click input');
      if (!input) return;
      input.value = Math.round(p.x) + ',' + Math.round(p.y) + ',' + Date.now();  // a new value per click
      input.dispatchEvent(new Event('input', {bubbles: true}));
    });
  } else if (element._osdLayer !== layer) {  // another model's layer: swapped in place, the zoom kept
    if (element._heat) element._osd.world.removeItem(element._heat);
    addLayer(element._osd);
  } else if (element._heat) {
    element._heat.setOpacity(cfg.opacity);
  }
  element._osdLayer = layer;
};
watch('value', show);
show();
"""
