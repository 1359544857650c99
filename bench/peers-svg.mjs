/**
 * SVG charts for the side-by-side benchmark: horizontal bars on a logarithmic axis (the figures
 * span five orders of magnitude, from an in-memory admission to an fsync per operation), one row
 * per configuration, one or more bars per row. Plain SVG 1.1 text, no script, no external font:
 * it renders the same on GitHub, in a browser and in an image viewer.
 */

const ROW = 22;
const BAR = 8;
/** Width of one character of the 11 px labels, generously (DejaVu Sans averages ~6.1 px). */
const CHAR_WIDTH = 6.4;
const PLOT_WIDTH = 520;
const RIGHT = 90;
const TOP = 48;
const BOTTOM = 44;
const FONT = 'font-family="DejaVu Sans, Verdana, sans-serif"';

const escape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * @param {{ title: string, axis: string, series: { name: string, color: string }[],
 *   rows: { label: string, values: (number | undefined)[], colors?: string[] }[],
 *   format: (v: number) => string, legend?: { name: string, color: string }[] }} chart
 *   `values[k]` belongs to `series[k]` (drawn in its colour unless the row gives `colors[k]`); an
 *   undefined value draws nothing (and says "n/a"). `legend` defaults to the series.
 */
export function barChart({ title, axis, series, rows, format, legend = series }) {
  const LABEL_WIDTH = Math.ceil(Math.max(...rows.map((r) => r.label.length)) * CHAR_WIDTH) + 16;
  const all = rows.flatMap((r) => r.values).filter((v) => v !== undefined && v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const x = (v) => LABEL_WIDTH + (PLOT_WIDTH * (Math.log10(v) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));
  const rowHeight = Math.max(ROW, series.length * (BAR + 2) + 8);
  const height = TOP + rows.length * rowHeight + BOTTOM;
  const width = LABEL_WIDTH + PLOT_WIDTH + RIGHT;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="11">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escape(title)}</text>`);
  legend.forEach((s, k) => {
    const lx = LABEL_WIDTH + k * 130;
    out.push(`<rect x="${lx}" y="28" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="37">${escape(s.name)}</text>`);
  });
  // Decades: a grid line and a label each.
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const gx = x(d).toFixed(1);
    out.push(`<line x1="${gx}" y1="${TOP - 4}" x2="${gx}" y2="${height - BOTTOM + 4}" stroke="#dddddd"/>`);
    out.push(`<text x="${gx}" y="${height - BOTTOM + 18}" text-anchor="middle" fill="#555555">${escape(format(d))}</text>`);
  }
  out.push(`<text x="${LABEL_WIDTH + PLOT_WIDTH / 2}" y="${height - 8}" text-anchor="middle" fill="#333333">${escape(axis)} (log scale)</text>`);
  rows.forEach((r, i) => {
    const y0 = TOP + i * rowHeight;
    if (i % 2 === 1) out.push(`<rect x="0" y="${y0}" width="${width}" height="${rowHeight}" fill="#f6f6f6"/>`);
    out.push(`<text x="${LABEL_WIDTH - 8}" y="${y0 + rowHeight / 2 + 4}" text-anchor="end">${escape(r.label)}</text>`);
    r.values.forEach((v, k) => {
      const by = y0 + 4 + k * (BAR + 2) + (rowHeight - 8 - series.length * (BAR + 2)) / 2;
      if (v === undefined || !(v > 0)) {
        out.push(`<text x="${LABEL_WIDTH + 4}" y="${by + BAR}" fill="#888888">n/a</text>`);
        return;
      }
      const w = Math.max(1, x(v) - LABEL_WIDTH);
      out.push(`<rect x="${LABEL_WIDTH}" y="${by.toFixed(1)}" width="${w.toFixed(1)}" height="${BAR}" fill="${r.colors?.[k] ?? series[k].color}"/>`);
      out.push(`<text x="${(LABEL_WIDTH + w + 4).toFixed(1)}" y="${(by + BAR).toFixed(1)}" font-size="10">${escape(format(v))}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
