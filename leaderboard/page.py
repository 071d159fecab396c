"""The leaderboard page: one self-contained HTML file (inline CSS, JS and SVG; no server, no CDN).

Sections, top to bottom: the caveats ("read this first"), the ranking table (sortable by any
column; each value with its 95% interval underneath; flags under each model; each run's
fingerprint in the last column), sample counts per task, paired differences, per-metric bar charts
with interval whiskers, a radar per model, the paper rows (ranked separately, marked "reported,
not reproduced"), and the notes.
"""

from __future__ import annotations

from html import escape

from mvbench import __version__
from mvbench.leaderboard.board import Board
from mvbench.leaderboard.charts import bar_chart, colour, radar
from mvbench.leaderboard.ranking import Entry, displayed
from mvbench.leaderboard.render import TASK_KEYS
from mvbench.tasks import LEADERBOARD_KEYS, METRICS, TASKS, leaderboard_metrics

FLAG_LABELS = {"fixture": "fixture data", "judge": "judge skipped", "subset": "subset", "incomplete": "incomplete",
               "mixed": "different data", "unverified": "data unverified", "paper": "reported, not reproduced"}

CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#1d2430;margin:0;
 background:#f6f7f9}
main{max-width:1400px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:26px 0 8px}
.sub{color:#4a5568;margin:0 0 12px}
.caveats{background:#fff4e5;border:2px solid #e8a33d;border-radius:8px;padding:10px 16px;margin:10px 0 6px}
.caveats h2{margin:2px 0 6px;color:#8a4b00;font-size:17px}
.caveats ul{margin:0;padding-left:18px}.caveats li{margin:3px 0}
.caveats .rows{color:#6b4a1a;font-size:12px}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{border:1px solid #dde1e7;padding:4px 7px;vertical-align:top}
th{background:#edf0f4;font-weight:600;white-space:nowrap}
table.sortable th[data-type]{cursor:pointer}
table.sortable th[data-type]:hover{background:#dfe5ee}
th[data-sorted=desc]::after{content:' \\25BC';font-size:10px}th[data-sorted=asc]::after{content:' \\25B2';font-size:10px}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td .v{display:block;font-weight:600}td .ci{display:block;color:#5a6577;font-size:11.5px}
td .na{display:block;color:#9aa3ae;font-size:11px;white-space:normal}td.missing{color:#9aa3ae}
td.best .v{color:#0b6b2f}
td.model{min-width:140px;max-width:220px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.flags{margin-top:3px}
.flag{display:inline-block;font-size:11px;border-radius:10px;padding:0 7px;margin:2px 3px 0 0;
 background:#fde2e1;color:#8b1c1c;border:1px solid #f2b8b5;white-space:nowrap}
.flag-paper{background:#e6eefc;color:#1f3f7a;border-color:#b9cbf0}
.flag-judge,.flag-subset{background:#fff1d6;color:#7a4d00;border-color:#f0d199}
td.fp{font-size:11px;line-height:1.3;color:#3c4656}
td.fp div{white-space:nowrap}
.charts{display:flex;flex-wrap:wrap;gap:10px}
.chart{background:#fff;border:1px solid #dde1e7;border-radius:6px}
.chart .chart-title{font-size:13px;font-weight:600;fill:#1d2430}
.chart .tick{font-size:10px;fill:#5a6577}.chart .value{font-size:10px;fill:#1d2430}
.chart .grid{stroke:#e6e9ee}.chart .whisker{stroke:#1d2430;stroke-width:1.4;fill:none}
.chart .missing{font-size:10px;fill:#b03030}
.radar .ring{fill:none;stroke:#e0e4ea}.radar .spoke{stroke:#e0e4ea}
.radar .axis{font-size:9.5px;fill:#3c4656}.radar .axis.missing{fill:#b03030}
figure{margin:0}figcaption{text-align:center;font-size:12px;font-weight:600}
.pos,.pos .ci{color:#0b6b2f;font-weight:600}.neg,.neg .ci{color:#a11d1d;font-weight:600}.zero,.zero .v{color:#5a6577}
.notes li{margin:3px 0}
footer{margin-top:24px;color:#6b7482;font-size:12px}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    if (!th.dataset.type) return;
    th.addEventListener('click', function () {
      var dir = th.dataset.sorted === 'desc' ? 'asc' : th.dataset.sorted === 'asc' ? 'desc' : (th.dataset.dir || 'desc');
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        if (x === '' && y === '') return 0;
        if (x === '') return 1;
        if (y === '') return -1;
        var c = th.dataset.type === 'num' ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
        return dir === 'asc' ? c : -c;
      });
      Array.prototype.forEach.call(heads, function (h) { delete h.dataset.sorted; });
      th.dataset.sorted = dir;
      rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
    });
  });
});
"""


def _flags(e: Entry) -> str:
    return "".join(f'<span class="flag flag-{escape(code)}" title="{escape(text)}">{escape(FLAG_LABELS.get(code, code))}'
                   "</span>" for code, text in e.flags)


def _metric_cell(e: Entry, key: str, best: bool) -> str:
    v = e.metrics.get(key)
    if v is None:
        why = "judge skipped" if METRICS[key].judge and e.judge_skipped else "not computed"
        return (f'<td class="num missing" data-sort="" title="{escape(METRICS[key].title)}: missing ({why}); '
                f'ranks as 0.0">—<span class="na">{escape(why)}</span></td>')
    shown = displayed(v)
    ci = (e.intervals or {}).get(key)
    rank = e.ranks.get(key)
    if ci:
        ci_html = f'<span class="ci">[{ci["low"]:.2f}, {ci["high"]:.2f}]</span>'
        tip = f"95% CI [{ci['low']:.4f}, {ci['high']:.4f}]"
    elif e.intervals:
        ci_html, tip = '<span class="na">no CI: 1 video</span>', "no interval: fewer than two videos"
    else:
        ci_html, tip = "", "no interval recorded"
    title = f"{METRICS[key].title} = {v:.4f}; {tip}; rank {rank}"
    return (f'<td class="num{" best" if best else ""}" data-sort="{shown}" title="{escape(title)}">'
            f'<span class="v">{shown:.3f}</span>{ci_html}</td>')


def _fingerprint(e: Entry) -> str:
    """Backend · frames · pixels / prompt · tokens / judge / data, and the frames rule on hover."""
    fp = e.fingerprint
    lines = [" · ".join(fp[k] for k in ("backend", "frames") if fp.get(k)),
             fp.get("pixels", "").replace(" per frame", " px/frame"),
             " · ".join(x for x in (fp.get("prompt"), fp.get("max tokens") and f"{fp['max tokens']} tokens") if x),
             fp.get("judge") and f"judge: {fp['judge']}", fp.get("data") and f"data {fp['data']}"]
    rows = [f"<div>{escape(line)}</div>" for line in lines if line]
    rule = fp.get("frames rule")
    title = f' title="frames rule: {escape(rule)}"' if rule else ""
    return f'<td class="fp"{title}>{"".join(rows) or "no fingerprint recorded"}</td>'


def _table(entries: list[Entry], table_id: str, colours: dict[str, str], with_fingerprint: bool = True) -> str:
    heads = ['<th data-type="num" data-dir="asc" title="rank within this table">#</th>',
             '<th data-type="text" data-dir="asc">model</th>',
             '<th data-type="num" data-dir="asc" title="mean of the ten dense ranks (lower is better)">mean rank</th>']
    for task, m in leaderboard_metrics():
        heads.append(f'<th data-type="num" data-dir="desc" data-key="{escape(m.key)}" '
                     f'title="{escape(task.title)} ({m.scale}); click to sort">{escape(m.title)}</th>')
    if with_fingerprint:
        heads.append("<th>run fingerprint</th>")
    best = {k: max((displayed(e.metrics[k]) for e in entries if e.metrics.get(k) is not None), default=None)
            for k in LEADERBOARD_KEYS}
    body = []
    for i, e in enumerate(entries):
        cells = [f'<td class="num" data-sort="{i + 1}">{i + 1}</td>',
                 f'<td class="model" data-sort="{escape(e.name.lower())}"><span class="swatch" '
                 f'style="background:{colours.get(e.name, "#999")}"></span>{escape(e.name)}'
                 f'<div class="flags">{_flags(e)}</div></td>',
                 f'<td class="num" data-sort="{e.mean_rank:.4f}">{e.mean_rank:.2f}</td>']
        cells += [_metric_cell(e, k, best[k] is not None and displayed(e.metrics.get(k)) == best[k] and len(entries) > 1)
                  for k in LEADERBOARD_KEYS]
        if with_fingerprint:
            cells.append(_fingerprint(e))
        body.append(f'<tr data-model="{escape(e.name)}">{"".join(cells)}</tr>')
    return (f'<table id="{table_id}" class="board sortable"><thead><tr>{"".join(heads)}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _names(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{len(names)} rows"


def _caveats(board: Board) -> str:
    items = [f'<li class="caveat caveat-{escape(code)}" data-code="{escape(code)}"><b>{escape(text.split(":")[0])}</b>:'
             f'{escape(text.split(":", 1)[1]) if ":" in text else ""} <span class="rows">({escape(_names(names))})</span></li>'
             for code, text, names in board.caveats()]
    if not items:
        return ""
    return f'<section id="caveats" class="caveats"><h2>Read this first</h2><ul>{"".join(items)}</ul></section>'


def _counts(board: Board) -> str:
    runs = [e for e in board.runs if e.counts]
    if not runs:
        return ""
    names = [TASKS.get(k.upper()).name for k in TASK_KEYS]
    head = "<th>model</th>" + "".join(f'<th title="{escape(TASKS.get(n).title)}">{n}</th>' for n in names)
    rows = []
    for e in runs:
        cells = []
        for k in TASK_KEYS:
            c = e.counts.get(k)
            cells.append('<td class="num missing">—</td>' if not c else
                         f'<td class="num" title="{c.get("scored")} of {c["records"]} records entered the metric">'
                         f'{c.get("scored")} / {c["records"]}</td>')
        rows.append(f"<tr><td>{escape(e.name)}</td>{''.join(cells)}</tr>")
    return ('<section id="counts"><h2>Samples per task</h2><p class="sub">Samples that entered each metric / records '
            f'evaluated.</p><table class="counts"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
            "</table></section>")


def _comparisons(board: Board) -> str:
    if not board.comparisons:
        return ""
    head = "<th>A</th><th>B</th>" + "".join(f"<th>{escape(m.title)}</th>" for _, m in leaderboard_metrics())
    rows = []
    for c in board.comparisons:
        cells = []
        for k in LEADERBOARD_KEYS:
            d = c.metrics.get(k)
            cls = "zero" if d is None or d["low"] <= 0 <= d["high"] else ("pos" if d["low"] > 0 else "neg")
            cells.append('<td class="num zero">—</td>' if d is None else
                         f'<td class="num {cls}"><span class="v">{d["diff"]:+.3f}</span>'
                         f'<span class="ci">[{d["low"]:.2f}, {d["high"]:.2f}]</span></td>')
        rows.append(f"<tr><td>{escape(c.better)}</td><td>{escape(c.worse)}</td>{''.join(cells)}</tr>")
    info = board.comparisons[0].info
    return ('<section id="paired"><h2>Paired differences</h2><p class="sub">A − B on the same records, 95% interval '
            f"from {info.get('resamples')} paired bootstrap draws of whole videos (seed {info.get('seed')}); "
            '<span class="pos">green</span>/<span class="neg">red</span>: the interval excludes 0, so the gap is '
            'supported by the data; grey: it is not.</p>'
            f'<table class="paired"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></section>')


def _charts(board: Board, colours: dict[str, str]) -> str:
    if not board.runs:
        return ""
    bars = "".join(bar_chart(k, board.runs, colours) for k in LEADERBOARD_KEYS)
    radars = "".join(f'<figure>{radar(e, LEADERBOARD_KEYS, colours[e.name])}<figcaption>{escape(e.name)}</figcaption>'
                     "</figure>" for e in board.runs)
    return ('<section id="per-task"><h2>Per task</h2><p class="sub">Bars: the displayed value; whiskers: the 95% '
            f'interval.</p><div class="charts">{bars}</div></section>'
            '<section id="radars"><h2>Profile per model</h2><p class="sub">All ten metrics on 0-1 (judge scores '
            f'1-5 mapped as (v − 1) / 4); a missing metric sits at the centre.</p><div class="charts">{radars}</div>'
            "</section>")


def _paper(board: Board, colours: dict[str, str]) -> str:
    if not board.paper:
        return ""
    return ('<section id="paper"><h2>Reported in the paper (not reproduced)</h2><p class="sub">The published '
            "MedVidBench test-set numbers, ranked among themselves: local runs are not scored on the same records "
            f"and are never ranked against them.</p>{_table(board.paper, 'paper-board', colours, False)}</section>")


def _notes(board: Board) -> str:
    items = []
    note = board.interval_note()
    if note:
        items.append(f"<li>{escape(note)}</li>")
    items += [f"<li>{escape(n)}</li>" for n in board.notes]
    items.append("<li>Ranking as the official app: values rounded as it shows them, a dense rank per metric "
                 "(ties share), missing metrics rank as 0.0, then the mean of the ten ranks; ties broken by more "
                 "first places, a lower rank sum, a higher normalised sum, the name.</li>")
    return f'<section id="notes" class="notes"><h2>Notes</h2><ul>{"".join(items)}</ul></section>'


def render_page(board: Board) -> str:
    """The whole page as one HTML string."""
    colours = {e.name: colour(i) for i, e in enumerate(board.entries)}
    n_runs = len(board.runs)
    sub = (f"{n_runs} run{'s' if n_runs != 1 else ''} ranked as the official MedVidBench leaderboard: a dense rank "
           "per metric, then the mean rank. Each value shows its 95% bootstrap interval underneath. Click a column "
           "header to sort.") if n_runs else "The published rows only."
    main_table = (f'<section id="ranking"><h2>Ranking</h2>{_table(board.runs, "board", colours)}</section>'
                  if board.runs else "")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(board.title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{escape(board.title)}</h1><p class=\"sub\">{escape(sub)}</p>"
            f"{_caveats(board)}{main_table}{_counts(board)}{_comparisons(board)}{_charts(board, colours)}"
            f"{_paper(board, colours)}{_notes(board)}"
            f"<footer>mvbench {escape(__version__)} · one self-contained file: no server, no network.</footer>"
            f"<script>{SORT_JS}</script></main></body></html>\n")
