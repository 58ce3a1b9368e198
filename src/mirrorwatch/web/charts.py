"""Dashboard charts as inline SVG, drawn on the server: no JavaScript, no images, no external assets.

Colours come from CSS classes (static/app.css) so the charts follow the page's palette; there are
no inline styles (the Content-Security-Policy forbids them). Every label is escaped here."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from mirrorwatch.display import safe_text
from mirrorwatch.services.dashboard import Bar, DayCount


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def day_columns(days: Sequence[DayCount], *, width: int = 720, height: int = 150) -> Markup:
    """Matches found per day (light) with the confirmed/reported part (dark), newest on the right."""
    if not days:
        return Markup("")
    top = max(max(d.total for d in days), 1)
    left, bottom, pad_top = 34, 18, 8
    plot_w, plot_h = width - left - 4, height - bottom - pad_top
    step = plot_w / len(days)
    bw = max(step - 1.5, 1.0)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-label="matches found per day">']
    parts.append(f'<text class="axis" x="{left - 4}" y="{pad_top + 8}" text-anchor="end">{top}</text>')
    parts.append(f'<text class="axis" x="{left - 4}" y="{pad_top + plot_h}" text-anchor="end">0</text>')
    parts.append(f'<line class="base" x1="{left}" y1="{pad_top + plot_h}" x2="{width - 4}" y2="{pad_top + plot_h}"/>')
    for i, d in enumerate(days):
        x = left + i * step
        h = plot_h * d.total / top
        hc = plot_h * d.confirmed / top
        tip = escape(f"{d.day.isoformat()}: {d.total} found, {d.confirmed} confirmed or reported")
        parts.append(f"<g><title>{tip}</title>")
        if d.total:
            parts.append(f'<rect class="bar" x="{_f(x)}" y="{_f(pad_top + plot_h - h)}" width="{_f(bw)}" height="{_f(h)}"/>')
        if d.confirmed:
            parts.append(f'<rect class="bar2" x="{_f(x)}" y="{_f(pad_top + plot_h - hc)}" width="{_f(bw)}" height="{_f(hc)}"/>')
        parts.append("</g>")
        if i % 7 == 0 or i == len(days) - 1:
            parts.append(f'<text class="axis" x="{_f(x + bw / 2)}" y="{height - 4}" text-anchor="middle">'
                         f"{escape(d.day.strftime('%m-%d'))}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(bars: Sequence[Bar], *, width: int = 420, row: int = 18, label_w: int = 150) -> Markup:
    """Horizontal bars with a label and a value; a bar with a link is clickable (SVG <a>, no JS)."""
    if not bars:
        return Markup('<p class="muted">nothing yet</p>')
    top = max(max(b.value for b in bars), 1)
    height = row * len(bars) + 4
    value_w = 56
    plot_w = width - label_w - value_w
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img">']
    for i, b in enumerate(bars):
        y = 2 + i * row
        w = plot_w * b.value / top
        full = safe_text(b.label)  # uploader names: control and bidi characters shown as escapes
        label = full if len(full) <= 24 else full[:23] + "…"
        inner = (f"<title>{escape(full)}: {b.value}</title>"
                 f'<text class="label" x="{label_w - 6}" y="{y + row - 5}" text-anchor="end">{escape(label)}</text>'
                 f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{_f(max(w, 1 if b.value else 0))}" height="{row - 5}"/>'
                 f'<text class="value" x="{_f(label_w + w + 4)}" y="{y + row - 5}">{b.value}</text>')
        if b.link:
            parts.append(f'<a href="{escape(b.link)}">{inner}</a>')
        else:
            parts.append(f"<g>{inner}</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
