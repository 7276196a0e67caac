"""Keyboard shortcuts for the Annotate tab: a small script that clicks the tab's buttons, so a key press goes
through exactly the same code as a mouse click. Keys typed into text boxes are left alone."""

from __future__ import annotations

import json

# key -> elem_id of the button it clicks
KEYMAP = {
    "b": "ann-benign",
    "m": "ann-malignant",
    "s": "ann-skip",
    "u": "ann-undo",
    "r": "ann-redo",
    "n": "ann-next",
    **{str(k): f"ann-sub-{k}" for k in range(1, 9)},
}

JS = """
(() => {
  if (window.__histoappShortcuts) return;
  window.__histoappShortcuts = true;
  const KEYS = __KEYMAP__;
  const TEXT_TYPES = ['text', 'search', 'email', 'number', 'password', 'url', 'tel', 'date', 'time'];
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    const tag = (t && t.tagName || '').toLowerCase();
    if (tag === 'textarea' || tag === 'select' || (t && t.isContentEditable)) return;
    if (tag === 'input' && TEXT_TYPES.includes((t.type || 'text').toLowerCase())) return;
    const id = KEYS[e.key.toLowerCase()];
    if (!id) return;
    const el = document.getElementById(id);
    if (!el || el.offsetParent === null || el.disabled) return;  // only on the visible Annotate tab
    e.preventDefault();
    el.click();
  });
})();
""".replace("__KEYMAP__", json.dumps(KEYMAP))

# Runs in the browser before a label click reaches Python: the last input (a hidden textbox) gets a fresh id,
# so a retried request carries the same id and the store applies it once.
SUBMISSION_ID_JS = """
(...args) => {
  const id = (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
             : Date.now().toString(36) + '-' + Math.random().toString(36).slice(2);
  args[args.length - 1] = id;
  return args;
}
"""

# The annotator's name lives in the browser's localStorage: saved as it is typed, read back on page load.
NAME_KEY = "histoapp-annotator"
REMEMBER_NAME_JS = (
    f"(name) => {{ try {{ localStorage.setItem('{NAME_KEY}', name || ''); }} catch (e) {{}} return [name]; }}"
)
RESTORE_NAME_JS = """
(name, ...rest) => {
  let saved = '';
  try { saved = localStorage.getItem('__NAME_KEY__') || ''; } catch (e) {}
  return [name || saved, ...rest];
}
""".replace("__NAME_KEY__", NAME_KEY)

HELP = (
    "Keys: **B** benign · **M** malignant · **1-8** subtype (1 A, 2 F, 3 PT, 4 TA, 5 DC, 6 LC, 7 MC, 8 PC) · "
    "**S** skip · **U** undo · **R** redo · **N** next. Keys are ignored while typing in a text box."
)
