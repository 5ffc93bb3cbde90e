"""`crawlmill report RUN_DIR -o report.html`: one self-contained HTML page about a run.

Where the documents, characters and tokens went (a funnel through every stage and every
filter rule), why rows were dropped (with sampled rows and their scores for each reason),
languages, domains before and after rebalancing when the run has them, the token-length
histogram, dedup cluster sizes and throughput per phase and stage.

Self-contained on purpose: the page is mailed, attached to tickets and opened on machines
without network. Plots are static SVG written here (no plotting library, no JavaScript,
no fonts or images fetched), so the file opens the same in any browser, years later. All
text from the crawl (URLs, document text, ids) is HTML-escaped: crawled pages contain
markup and scripts by definition.

The numbers come from pipeline/stats.py, i.e. from the run's outputs: they equal the
manifest's and `rejected/`'s, also after a resumed run. Every headline number carries a
`data-stat` attribute with its exact value, which tests/pipeline/test_report.py reads
back from the page as rendered by headless Chromium.
"""

from __future__ import annotations

import argparse
import html
import json
import time
from pathlib import Path

from pipeline import schema as S
from pipeline.inspect import rejected_rows
from pipeline.io import atomic_path, write_problem
from pipeline.shards import read_manifest
from pipeline.stats import rejected_table, run_stats

SAMPLES_PER_REASON = 3
SNIPPET_CHARS = 600
TOP_LANGUAGES = 30
PALETTE = ("#3b6ea8", "#d08a2e", "#5a9e5a", "#b5475b", "#7d63a8", "#4d9aa3")

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       margin: 24px auto; max-width: 1100px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f5f5f5; } td.l, th.l { text-align: left; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; } .muted { color: #777; }
.sample { border: 1px solid #e3e3e3; border-radius: 4px; padding: 6px 10px; margin: 6px 0; }
.sample pre { white-space: pre-wrap; word-break: break-word; background: #fafafa;
              margin: 4px 0; padding: 6px; max-height: 220px; overflow: auto; }
.scores { font-size: 12px; color: #444; } svg { display: block; margin: 6px 0; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}"


def stat(name: str, value) -> str:
    """A number the tests read back: data-stat names it, data-value is exact."""
    raw = "" if value is None else value
    return f'<span data-stat="{esc(name)}" data-value="{esc(raw)}">{fmt(value)}</span>'


# --- SVG charts ----------------------------------------------------------------------------


def hbar_chart(rows: list[tuple[str, float, str]], unit: str, color: str = PALETTE[0]) -> str:
    """Horizontal bars: (label, value, tooltip) per row, labels left, values right."""
    if not rows:
        return '<p class="muted">nothing to plot</p>'
    label_w, bar_w, value_w, row_h = 230, 560, 110, 18
    top = max(v for _, v, _ in rows) or 1
    height = row_h * len(rows) + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + value_w}" '
        f'height="{height}" role="img" aria-label="{esc(unit)}">'
    ]
    for i, (label, value, tip) in enumerate(rows):
        y = i * row_h + 3
        w = max(1.0, bar_w * value / top) if value else 0
        shown = label if len(label) <= 36 else label[:33] + "..."
        parts.append(
            f"<g><title>{esc(tip)}</title>"
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{esc(shown)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 4}" fill="{color}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 12}">{esc(fmt(value))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def vbar_chart(bars: list[tuple[str, float]], x_title: str, y_title: str) -> str:
    """Vertical bars (a histogram): (bin label, count) left to right."""
    if not bars:
        return '<p class="muted">nothing to plot</p>'
    left, bottom, plot_h = 50, 46, 200
    bar_w = max(14, min(60, 760 // len(bars)))
    width, height = left + bar_w * len(bars) + 20, plot_h + bottom + 20
    top = max(v for _, v in bars) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(y_title)}">',
        f'<line x1="{left}" y1="{plot_h + 10}" x2="{width - 10}" y2="{plot_h + 10}" '
        'stroke="#999"/>',
        f'<text x="4" y="14">{esc(y_title)}</text>',
        f'<text x="{left}" y="{height - 4}">{esc(x_title)}</text>',
    ]
    for i, (label, value) in enumerate(bars):
        h = plot_h * value / top
        x = left + i * bar_w
        parts.append(
            f"<g><title>{esc(label)}: {esc(fmt(value))}</title>"
            f'<rect x="{x + 1}" y="{plot_h + 10 - h:.1f}" width="{bar_w - 2}" height="{h:.1f}" '
            f'fill="{PALETTE[0]}"/>'
            f'<text x="{x + bar_w / 2:.1f}" y="{plot_h + 6 - h:.1f}" text-anchor="middle">'
            f"{esc(fmt(value))}</text>"
            f'<text x="{x + bar_w / 2:.1f}" y="{plot_h + 24}" text-anchor="middle" '
            f'transform="rotate(30 {x + bar_w / 2:.1f} {plot_h + 24})">{esc(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def paired_bar_chart(rows: list[tuple[str, float, float]], names: tuple[str, str]) -> str:
    """Two bars per label (before / after), as shares in percent."""
    if not rows:
        return '<p class="muted">nothing to plot</p>'
    label_w, bar_w, row_h = 200, 520, 30
    top = max(max(a, b) for _, a, b in rows) or 1
    height = row_h * len(rows) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 120}" '
        f'height="{height}" role="img" aria-label="before and after">',
        f'<rect x="{label_w}" y="2" width="10" height="10" fill="{PALETTE[1]}"/>'
        f'<text x="{label_w + 14}" y="11">{esc(names[0])}</text>'
        f'<rect x="{label_w + 120}" y="2" width="10" height="10" fill="{PALETTE[0]}"/>'
        f'<text x="{label_w + 134}" y="11">{esc(names[1])}</text>',
    ]
    for i, (label, before, after) in enumerate(rows):
        y = 20 + i * row_h
        for j, (value, color) in enumerate(((before, PALETTE[1]), (after, PALETTE[0]))):
            w = bar_w * value / top
            parts.append(
                f'<rect x="{label_w}" y="{y + j * 12}" width="{w:.1f}" height="11" '
                f'fill="{color}"><title>{esc(label)}: {value:.2f}%</title></rect>'
                f'<text x="{label_w + w + 4:.1f}" y="{y + j * 12 + 10}">{value:.1f}%</text>'
            )
        parts.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{esc(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --- sections --------------------------------------------------------------------------------


def section_summary(stats: dict) -> str:
    kept = stats["kept"]
    tok = stats["tokenizer"] or {}
    cards = [
        ("records read", stat("records", stats["records"])),
        ("documents kept", stat("docs", kept["docs"])),
        ("rows rejected", stat("rejected", stats["rejected"])),
        ("tokens", stat("tokens", kept["tokens"])),
        ("characters", stat("chars", kept["chars"])),
        ("shards", stat("shards", stats["shards"])),
    ]
    inputs = "".join(f"<li>{esc(path)}</li>" for path in stats["inputs"])
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><span class="muted">{n}</span><b>{v}</b></div>' for n, v in cards
        )
        + "</div>"
        f"<p>Manifest format_version {esc(stats['format_version'])}, crawlmill "
        f"{esc(stats['crawlmill_version'])}; tokenizer {esc(tok.get('name'))} "
        f"(vocab {fmt(tok.get('vocab_size'))}, EOS {esc(tok.get('eos_id'))}); "
        f"{fmt(stats['shard_bytes'])} bytes of shards.</p>"
        f"<details><summary>{len(stats['inputs'])} input file(s)</summary>"
        f"<ul>{inputs}</ul></details>"
    )


def section_funnel(stats: dict) -> str:
    steps = stats["funnel"]
    charts = []
    for unit in ("docs", "chars", "tokens"):
        if steps and steps[0][unit] is None:
            charts.append(f'<p class="muted">{unit}: not recorded by this run\'s format</p>')
            continue
        rows = [
            (
                s["reason"]
                if s["stage"] == "input"
                else f"+ {s['reason']}"
                if s.get("added")
                else f"− {s['reason']}",
                s[unit],
                f"after {s['stage']}/{s['reason']}: {fmt(s[unit])} {unit} left",
            )
            for s in steps
        ]
        charts.append(f"<h3>{unit} left after each step</h3>" + hbar_chart(rows, unit))
    table = [
        "<table><tr><th class=l>stage</th><th class=l>step</th><th>docs left</th>"
        "<th>chars left</th><th>tokens left</th><th>docs dropped</th><th>chars dropped</th>"
        "<th>tokens dropped</th></tr>"
    ]
    for s in steps:
        d = s["dropped"] or {k: f"+{fmt(v)}" for k, v in (s.get("added") or {}).items()}
        table.append(
            f'<tr data-funnel-stage="{esc(s["stage"])}" data-funnel-reason="{esc(s["reason"])}" '
            f'data-docs-left="{esc(s["docs"])}"><td class=l>{esc(s["stage"])}</td>'
            f"<td class=l>{esc(s['reason'])}</td><td>{fmt(s['docs'])}</td>"
            f"<td>{fmt(s['chars'])}</td><td>{fmt(s['tokens'])}</td>"
            f"<td>{fmt(d.get('docs'))}</td><td>{fmt(d.get('chars'))}</td>"
            f"<td>{fmt(d.get('tokens'))}</td></tr>"
        )
    table.append("</table>")
    note = (
        "<p class=muted>Every record read is one row: kept, or dropped by exactly one stage "
        "(first reason wins), in pipeline order. Characters and tokens are those of each "
        "row's text as the pipeline last held it; rows dropped before extraction have none. "
        "The last line equals the kept documents.</p>"
    )
    return note + "".join(charts) + "".join(table)


def section_reasons(stats: dict, samples: dict) -> str:
    drops = sorted(stats["drop_reasons"], key=lambda d: (-d["docs"], d["stage"], d["reason"]))
    rows = [
        (f"{d['stage']}/{d['reason']}", d["docs"], f"{d['reason']}: {fmt(d['docs'])} rows")
        for d in drops
    ]
    table = [
        "<table><tr><th class=l>stage</th><th class=l>reason</th><th>rows</th><th>chars</th>"
        "<th>tokens</th></tr>"
    ]
    for d in drops:
        table.append(
            f"<tr><td class=l>{esc(d['stage'])}</td><td class=l>{esc(d['reason'])}</td>"
            f"<td>{stat('rejected:' + d['reason'], d['docs'])}</td><td>{fmt(d['chars'])}</td>"
            f"<td>{fmt(d['tokens'])}</td></tr>"
        )
    table.append("</table>")
    sampled = ["<h3>Sampled rows per reason</h3>"]
    for d in drops:
        rows_html = "".join(sample_html(row) for row in samples.get(d["reason"], []))
        sampled.append(
            f"<details><summary>{esc(d['reason'])} ({fmt(d['docs'])} rows)</summary>"
            f"{rows_html}</details>"
        )
    return hbar_chart(rows, "rows", PALETTE[3]) + "".join(table) + "".join(sampled)


SAMPLE_FIELDS = (
    S.ID,
    S.URL,
    S.SOURCE,
    S.DROP_STAGE,
    S.DROP_REASON,
    S.DROP_DETAIL,
    S.LANG,
    S.LANG_SCORE,
)


def sample_html(row: dict) -> str:
    head = " · ".join(f"{k}: <b>{esc(row[k])}</b>" for k in SAMPLE_FIELDS if k in row)
    scores = ", ".join(
        f"{esc(k)}={esc(round(v, 4) if isinstance(v, float) else v)}"
        for k, v in row.items()
        if k not in SAMPLE_FIELDS and k != S.TEXT
    )
    text = row.get(S.TEXT)
    if text is None:
        body = '<p class="muted">text not kept (output.keep_rejected_text: false)</p>'
    else:
        snippet = text[:SNIPPET_CHARS] + (" [...]" if len(text) > SNIPPET_CHARS else "")
        body = f"<pre>{esc(snippet)}</pre>"
    return f'<div class="sample"><div>{head}</div><div class="scores">{scores}</div>{body}</div>'


def _group_table(groups: dict | None, rejected: dict | None, key_title: str) -> str:
    if not groups:
        return ""
    rows = [
        f"<table><tr><th class=l>{esc(key_title)}</th><th>docs</th><th>tokens</th><th>chars</th>"
        + ("<th>rejected rows</th>" if rejected is not None else "")
        + "</tr>"
    ]
    for key, c in groups.items():
        extra = (
            f"<td>{fmt((rejected or {}).get(key, {}).get('docs', 0))}</td>"
            if rejected is not None
            else ""
        )
        rows.append(
            f"<tr><td class=l>{esc(key)}</td><td>{fmt(c['docs'])}</td><td>{fmt(c['tokens'])}</td>"
            f"<td>{fmt(c['chars'])}</td>{extra}</tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def section_languages(stats: dict) -> str:
    langs = stats["kept"]["by_lang"] or {}
    rows = [
        (lang, c["tokens"] or 0, f"{lang}: {fmt(c['docs'])} docs, {fmt(c['tokens'])} tokens")
        for lang, c in list(langs.items())[:TOP_LANGUAGES]
    ]
    more = len(langs) - TOP_LANGUAGES
    note = f'<p class="muted">(+{more} more languages in the table)</p>' if more > 0 else ""
    return (
        "<h3>tokens kept per language</h3>"
        + hbar_chart(rows, "tokens", PALETTE[2])
        + note
        + _group_table(langs, stats["rejected_by_lang"] or {}, "language")
    )


def _shares(groups: dict) -> dict:
    total = sum(c["tokens"] or 0 for c in groups.values()) or 1
    return {k: 100 * (c["tokens"] or 0) / total for k, c in groups.items()}


def section_domains(stats: dict) -> str:
    after = stats["kept"]["by_domain"]
    before = stats["domain_before_rebalance"]
    parts = []
    if not after:
        parts.append(
            '<p class="muted">This run has no domain labels (no domain column in its shards).</p>'
        )
    elif before:
        b, a = _shares(before), _shares(after)
        rows = [(k, b.get(k, 0.0), a.get(k, 0.0)) for k in sorted(set(b) | set(a))]
        parts.append("<h3>token share per domain, before and after rebalancing</h3>")
        parts.append(paired_bar_chart(rows, ("before", "after")))
        parts.append(_group_table(after, None, "domain (after)"))
    else:
        rows = [(k, c["tokens"] or 0, f"{k}: {fmt(c['docs'])} docs") for k, c in after.items()]
        parts.append("<h3>tokens kept per domain</h3>" + hbar_chart(rows, "tokens", PALETTE[4]))
        parts.append(_group_table(after, None, "domain"))
    if stats["rebalance"] is not None:
        dumped = json.dumps(stats["rebalance"], indent=2, sort_keys=True, ensure_ascii=False)
        parts.append(
            f"<details><summary>rebalance.json</summary><pre>{esc(dumped)}</pre></details>"
        )
    return "".join(parts)


def section_lengths(stats: dict) -> str:
    kept = stats["kept"]
    bars = [(f"{b['lo']:,}–{b['hi']:,}", b["docs"]) for b in kept["token_histogram"]]
    table = ["<table><tr><th class=l>length</th>"]
    points = None
    for p in kept["length_percentiles"].values():
        if p:
            points = list(p)
            break
    if points:
        table.append("".join(f"<th>{esc(k)}</th>" for k in points) + "</tr>")
        for unit, p in kept["length_percentiles"].items():
            if p:
                table.append(
                    f"<tr><td class=l>{esc(unit)}</td>"
                    + "".join(f"<td>{fmt(p[k])}</td>" for k in points)
                    + "</tr>"
                )
    table.append("</table>")
    return vbar_chart(bars, "tokens per document (bins of powers of 2)", "documents") + "".join(
        table
    )


def section_dedup(stats: dict) -> str:
    clusters = stats["dedup_clusters"]
    if not clusters:
        return '<p class="muted">No rows were dropped as duplicates in this run.</p>'
    parts = []
    for reason, sizes in clusters.items():
        bars = [(str(size), n) for size, n in sizes.items()]
        parts.append(
            f"<h3>{esc(reason)}: clusters by size ({fmt(sum(sizes.values()))} clusters)</h3>"
        )
        parts.append(vbar_chart(bars, "documents in the cluster (kept one included)", "clusters"))
    return "".join(parts)


def section_throughput(stats: dict) -> str:
    t = stats["throughput"]
    if not t:
        return '<p class="muted">No timings.json in this run directory.</p>'
    phases = [
        (name, v["seconds"], f"{name}: {v['seconds']:.2f} s")
        for name, v in t["phases"].items()
        if name != "total"
    ]
    stages = sorted(t["stages"].items(), key=lambda kv: -kv[1]["cpu_seconds"])
    rows = [
        (
            name,
            v["cpu_seconds"],
            f"{name}: {v['cpu_seconds']:.2f} CPU s, "
            f"{fmt(v['records_per_cpu_s'])} records per CPU s",
        )
        for name, v in stages
    ]
    table = [
        "<table><tr><th class=l>stage</th><th>CPU seconds</th><th>records / CPU s</th>"
        "<th>wall seconds</th></tr>"
    ]
    for name, v in stages:
        wall = v.get("wall_seconds")
        table.append(
            f"<tr><td class=l>{esc(name)}</td><td>{v['cpu_seconds']:.2f}</td>"
            f"<td>{fmt(v['records_per_cpu_s'])}</td>"
            f"<td>{'–' if wall is None else f'{wall:.2f}'}</td></tr>"
        )
    table.append("</table>")
    total = t["phases"].get("total", {})
    return (
        f"<p>{fmt(t.get('workers'))} worker(s); {total.get('seconds', 0):,.1f} s wall in total, "
        f"{fmt(total.get('records_per_s'))} records/s. Seconds differ run to run "
        "(timings.json); every other number in this report does not.</p>"
        "<h3>wall seconds per phase</h3>"
        + hbar_chart(phases, "seconds", PALETTE[5])
        + "<h3>CPU seconds per stage (summed over workers)</h3>"
        + hbar_chart(rows, "CPU seconds", PALETTE[5])
        + "".join(table)
    )


def section_sources(stats: dict) -> str:
    return _group_table(stats["kept"]["by_source"], None, "source file")


# --- the page ---------------------------------------------------------------------------------


def render(directory: str | Path, seed: int = 0) -> str:
    """The report of a run directory, as one HTML string."""
    directory = Path(directory)
    stats = run_stats(directory)
    rejected = rejected_table(directory, read_manifest(directory))
    samples = {
        d["reason"]: rejected_rows(rejected, d["reason"], SAMPLES_PER_REASON, seed)
        for d in stats["drop_reasons"]
    }
    sections = [
        ("summary", "Summary", section_summary(stats)),
        ("funnel", "Funnel: documents, characters, tokens", section_funnel(stats)),
        ("reasons", "Drop reasons", section_reasons(stats, samples)),
        ("languages", "Languages", section_languages(stats)),
        ("domains", "Domains", section_domains(stats)),
        ("lengths", "Document lengths", section_lengths(stats)),
        ("dedup", "Dedup cluster sizes", section_dedup(stats)),
        ("throughput", "Throughput", section_throughput(stats)),
        ("sources", "Source files", section_sources(stats)),
    ]
    nav = " · ".join(f'<a href="#{key}">{esc(title)}</a>' for key, title, _ in sections)
    body = "".join(
        f'<section id="{key}"><h2>{esc(title)}</h2>{content}</section>'
        for key, title, content in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        # no network: nothing may load from anywhere, whatever a crawled string contains
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>crawlmill report: {esc(directory.name)}</title><style>{CSS}</style></head>"
        f"<body><h1>crawlmill run report</h1><p class=muted>{esc(directory)}</p>"
        f"<nav>{nav}</nav>{body}</body></html>\n"
    )


class ReportError(ValueError):
    """An --output the report cannot be written to; the CLI exits 2 for it."""


def write_report(directory: str | Path, output: str | Path, seed: int = 0) -> Path:
    """Render first, so a directory that is not a run fails before anything is created;
    then write `output` (temp file + rename), creating its parent directory."""
    output = Path(output)
    if output.is_dir():
        raise ReportError(
            f"--output {output}: is a directory; give a file name such as {output / 'report.html'}"
        )
    page = render(directory, seed)
    try:
        with atomic_path(output) as tmp:
            Path(tmp).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportError(
            f"--output {output}: cannot write it: {write_problem(output, exc)}"
        ) from None
    return output


def cmd_report(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    output = Path(args.output) if args.output else Path(args.directory) / "report.html"
    write_report(args.directory, output, args.seed)
    seconds = time.perf_counter() - start
    print(f"wrote {output} ({output.stat().st_size:,} bytes) in {seconds:.1f}s")
    return 0


def add_command(sub) -> None:
    parser = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a run (funnel, drops, languages, plots)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("directory", metavar="RUN_DIR", help="a crawlmill run directory")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="where to write (default: RUN_DIR/report.html)"
    )
    parser.add_argument("--seed", type=int, default=0, help="which rejected rows are sampled")
    parser.set_defaults(func=cmd_report)
