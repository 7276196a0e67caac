"""Layout checks by element geometry, run in the page with ``page.evaluate(CHECK, selector)``: each returns its
problems in words (an empty list: the layout is right)."""

# A table: every header and cell whole (nothing clipped or ellipsised: scrollWidth <= clientWidth) and on one
# line (its text in one line box), the table inside the viewport and nothing around it scrolling sideways.
TABLE_PROBLEMS = """(selector) => {
  const root = document.querySelector(selector);
  const table = root && root.querySelector('table');
  if (!table) return [`${selector}: no table`];
  const out = [];
  const right = table.getBoundingClientRect().right;
  if (right > document.documentElement.clientWidth) out.push(`the table ends at ${right} px, past the viewport`);
  for (let el = table; el && el !== root.parentElement; el = el.parentElement) {
    if (el.scrollWidth > el.clientWidth + 1) out.push(`<${el.tagName.toLowerCase()} ${el.className}> scrolls sideways`);
  }
  const cells = [...table.querySelectorAll('th, td')];
  if (!cells.length) out.push('the table is empty');
  for (const cell of cells) {
    const text = cell.innerText.trim();
    if (cell.scrollWidth > cell.clientWidth + 1) out.push(`"${text}" is cut`);
    const range = document.createRange();
    range.selectNodeContents(cell);
    const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
    if (lines.size > 1) out.push(`"${text}" wraps onto ${lines.size} lines`);
  }
  return out;
}"""

# A plotly figure (in the block ``selector``): no text cut by the figure's edge; no title, axis title or tick
# label over a plot area (a subplot's row names under the next panel read "alignant") or over another one; the
# legend clear of them all; the title clear of the label Gradio draws on the block.
PLOT_PROBLEMS = """(selector) => {
  const block = document.querySelector(selector);
  const plot = block && block.querySelector('.js-plotly-plot');
  if (!plot) return [`${selector}: no plotly figure`];
  const rect = (el) => el.getBoundingClientRect();
  const kind = (t) => {
    const own = t.getAttribute('class') || '';
    if (own.startsWith('gtitle')) return 'title';
    if (/^[xy][0-9]*title$/.test(own)) return 'axis title';
    if (/^[xy][0-9]*tick$/.test(t.parentElement.getAttribute('class') || '')) return 'tick label';
    return own === 'legendtext' ? 'legend entry' : 'text';
  };
  const texts = [...plot.querySelectorAll('text')].filter((t) => t.textContent.trim() && rect(t).width > 0);
  const name = (t) => `${kind(t)} "${t.textContent}"`;
  // Overlapping by more than 2 px each way: a text's box is its line box, a little taller than its glyphs.
  const meets = (a, b) => a.left < b.right - 2 && b.left < a.right - 2 && a.top < b.bottom - 2 && b.top < a.bottom - 2;
  const out = [];
  const box = rect(plot);
  for (const t of texts) {
    const r = rect(t);
    if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
      out.push(`${name(t)} is cut by the figure's edge`);
  }
  const labels = texts.filter((t) => ['title', 'axis title', 'tick label'].includes(kind(t)));
  const areas = [...plot.querySelectorAll('.draglayer .nsewdrag')].map(rect);
  labels.forEach((t, i) => {
    if (areas.some((a) => meets(a, rect(t)))) out.push(`${name(t)} lies over a plot area`);
    for (const u of labels.slice(i + 1)) if (meets(rect(t), rect(u))) out.push(`${name(t)} meets ${name(u)}`);
  });
  const legend = plot.querySelector('g.legend rect.bg');
  for (const t of labels) if (legend && meets(rect(legend), rect(t))) out.push(`the legend covers ${name(t)}`);
  const badge = block.querySelector('[data-testid="block-label"]');
  for (const t of labels) if (badge && kind(t) === 'title' && meets(rect(badge), rect(t))) out.push(`the block label covers ${name(t)}`);
  return out;
}"""
