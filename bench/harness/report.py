"""Presenting a run: the terminal table, a Markdown table, JSON and an SVG chart."""

import html
import json
import math

from .model import OK, display_unit


def fmt_value(v, unit):
    """A figure with a readable unit."""
    if v is None:
        return "-"
    if unit in ("s", "s/job"):
        suffix = "/job" if unit == "s/job" else ""
        ns = v * 1e9
    elif unit == "ns":
        suffix, ns = "", v
    elif unit == "CPU s":
        return f"{v:.2f} {unit}"
    else:
        return f"{v:,.1f} {unit}"
    for scale, name in ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1, "ns")):
        if ns >= scale or scale == 1:
            x = ns / scale
            digits = 0 if x >= 100 else 1 if x >= 10 else 2
            return f"{x:.{digits}f} {name}{suffix}"
    return str(v)


def cells(row):
    """(tool, median, spread, ratio, note) strings for one row."""
    if row.status != OK:
        return row.tool, f"{row.status}: {row.reason}", "", "", ""
    s = row.summary()
    unit = display_unit(row)
    spread = row.spread()
    reps = f" (n={len(row.samples)})" if row.fixed is None else ""
    sp = ("-" if spread is None else f"{spread * 100:.0f}%") + reps
    ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
    return row.tool, fmt_value(s[0], unit), sp, ratio, row.note or ""


def text_table(run):
    """The table printed at the end of a run."""
    out = []
    for c in run["comparisons"]:
        out.append("")
        out.append(f"{c.number}. {c.title}")
        out.append(f"   {c.work}")
        rows = [cells(r) for r in c.rows]
        w0 = max([len(r[0]) for r in rows] + [4])
        w1 = max([len(r[1]) for r in rows if r[2]] + [6])
        out.append(f"   {'tool':<{w0}}  {'median':>{w1}}  {'spread':>12}  {'ratio':>8}")
        for tool, med, sp, ratio, note in rows:
            if not sp and not ratio and ":" in med:
                out.append(f"   {tool:<{w0}}  {med}")
                continue
            line = f"   {tool:<{w0}}  {med:>{w1}}  {sp:>12}  {ratio:>8}"
            out.append(line + (f"  {note}" if note else ""))
        for n in c.notes:
            out.append(f"   note: {n}")
    return "\n".join(out)


def markdown(run):
    """The same table in Markdown, for the README."""
    m = run["machine"]
    out = [
        f"`bench/run{' --quick' if m['mode'] == 'quick' else ''}` of {m['date']} on "
        f"{m['cpus']} cores ({m['cpu']}), {m['os']}: {m['seconds']:.0f} s, of which "
        f"{m.get('build_seconds', 0):.0f} s compiling; load average "
        f"{m['load_at_start'][0]:.1f} at the start.",
        "",
        "| comparison | tool | median | spread | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for c in run["comparisons"]:
        for j, r in enumerate(c.rows):
            tool, med, sp, ratio, note = cells(r)
            title = f"{c.number}. {c.title}" if j == 0 else ""
            tool = tool + (f" ({note})" if note else "")
            cols = [title, tool, med, sp, ratio]
            out.append("| " + " | ".join(x.replace("|", "\\|") for x in cols) + " |")
    notes = [n for c in run["comparisons"] for n in c.notes]
    if notes:
        out.append("")
        out += [f"- {n}" for n in dict.fromkeys(notes)]
    return "\n".join(out)


def to_json(run):
    """The run as a JSON document."""
    return json.dumps(
        {
            "machine": run["machine"],
            "jobctl": run["jobctl"],
            "builds": run["builds"],
            "comparisons": [c.to_json() for c in run["comparisons"]],
        },
        indent=2,
        ensure_ascii=False,
    )


def svg(run):
    """A bar chart of every row's ratio to its baseline (log scale), one panel per comparison."""
    width, left, right = 1000, 360, 130
    plot_w = width - left - right
    ratios = [r.ratio for c in run["comparisons"] for r in c.rows if r.ratio]
    hi = max(ratios + [2.0]) * 1.2
    lo = min([x for x in ratios if x > 0] + [1.0]) / 1.2
    lo = min(lo, 0.5)

    def x(v):
        return left + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    parts, y = [], 40
    m = run["machine"]
    parts.append(
        f'<text x="10" y="22" font-size="16" font-weight="bold">jobctl bench, {esc(m["date"])}, '
        f'{m["cpus"]} cores, {esc(m["mode"])} run</text>'
    )
    parts.append(
        '<text x="10" y="40" font-size="12">bars: median time as a ratio to the comparison\'s '
        "baseline (log scale); whiskers: min-max of the repetitions</text>"
    )
    y = 50
    for c in run["comparisons"]:
        y += 26
        parts.append(f'<text x="10" y="{y}" font-size="14" font-weight="bold">{c.number}. {esc(c.title)}</text>')
        for r in c.rows:
            y += 20
            parts.append(f'<text x="{left - 8}" y="{y + 4}" font-size="12" text-anchor="end">{esc(r.tool[:58])}</text>')
            if r.status != OK:
                parts.append(f'<text x="{left}" y="{y + 4}" font-size="11" fill="#888">{esc(r.status)}: {esc((r.reason or "")[:110])}</text>')
                continue
            tool, med, sp, ratio, note = cells(r)
            if r.ratio:
                color = "#4a7" if r.baseline or r.ratio <= 1.0 else "#48c" if r.ratio < 3 else "#d84"
                parts.append(
                    f'<rect x="{x(lo):.1f}" y="{y - 7}" width="{max(x(r.ratio) - x(lo), 1):.1f}" height="13" fill="{color}"/>'
                )
                s = r.summary()
                tx = x(r.ratio) + 6
                if s and s[0] and not r.baseline:
                    a, b = x(max(r.ratio * s[1] / s[0], lo)), x(min(r.ratio * s[2] / s[0], hi))
                    parts.append(f'<line x1="{a:.1f}" x2="{b:.1f}" y1="{y}" y2="{y}" stroke="#000" stroke-width="1"/>')
                    tx = max(tx, b + 6)
                label = f"{ratio}  {med}"
            else:
                label, tx = med, x(lo) + 4
            parts.append(f'<text x="{tx:.1f}" y="{y + 4}" font-size="11">{esc(label)}</text>')
    y += 30
    for v in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if lo <= v <= hi:
            parts.insert(0, f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="50" y2="{y - 14}" stroke="#ddd"/>')
            parts.append(f'<text x="{x(v):.1f}" y="{y}" font-size="11" text-anchor="middle">{v:g}x</text>')
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 12}" '
        f'font-family="DejaVu Sans, Arial, sans-serif"><rect width="100%" height="100%" fill="#fff"/>'
    )
    return head + "\n".join(parts) + "</svg>\n"


def esc(s):
    return html.escape(str(s), quote=True)
