"""The health catalogue as ONE self-contained HTML page: every metric and metric group with its type, event key,
description, health badges, call sites and users; funnels drawn as their ordered steps; a search box and
filters by finding, tag and kind. Pure.

Safe to open from anywhere and to publish: no external fetch (inline CSS and script only), a Content-Security-
Policy that allows exactly the page's own style and script (by their SHA-256 hashes) and nothing else, every
outside string HTML-escaped, and the JSON data escaped for a script element (`<`, `>`, `&`, U+2028, U+2029). The
script only shows and hides what the server rendered: it never turns data into markup. The page works without it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable, Sequence

from metrics_sync.core.model import Use
from metrics_sync.health.model import CODES, Flag, GroupRow, Health, MetricRow
from metrics_sync.output.escape import lines_shown, shown
from metrics_sync.output.health import LABELS, as_json, summary, when

STYLE = """
:root{--fg:#1d232b;--muted:#5b6673;--line:#d8dee6;--bg:#f6f8fa;--card:#fff;--alert:#b42318;--warn:#9a5b00;
--note:#2e5c9a;--ok:#1a7f37}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{padding:16px 24px;background:#11263c;color:#fff}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#c9d6e3}
.controls{position:sticky;top:0;z-index:1;display:flex;flex-wrap:wrap;gap:8px;align-items:center;padding:10px 24px;
background:#fff;border-bottom:1px solid var(--line)}
.controls input,.controls select{font:inherit;padding:6px 8px;border:1px solid var(--line);border-radius:6px}
.controls input{flex:1 1 260px}
#count{color:var(--muted)}
main{padding:16px 24px;display:grid;gap:12px}
h2{margin:12px 0 0;font-size:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px}
.card h3{margin:0;font-size:15px;display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.card h3 .key{font-family:ui-monospace,monospace;font-weight:400;color:var(--muted)}
.card p{margin:6px 0}
.card p.description{white-space:pre-line}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0 0}
dt{color:var(--muted)}
dd{margin:0}
code{font-family:ui-monospace,monospace;background:#eef1f5;padding:0 3px;border-radius:3px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff;background:var(--note)}
.badge.alert{background:var(--alert)}.badge.warning{background:var(--warn)}.badge.ok{background:var(--ok)}
.badge.kind{background:#e7ecf2;color:var(--fg)}
.findings{margin:8px 0 0;padding:0;list-style:none}
.finding{border-left:3px solid var(--note);padding:2px 8px;margin:4px 0}
.finding.alert{border-color:var(--alert)}.finding.warning{border-color:var(--warn)}
.finding .hint{color:var(--muted)}
ul.plain{margin:0;padding-left:18px}
ol.funnel{display:flex;flex-wrap:wrap;gap:0;list-style:none;padding:0;margin:8px 0 0;counter-reset:step}
ol.funnel li{counter-increment:step;position:relative;padding:6px 18px 6px 26px;background:#e3ecf7;margin-right:6px;
clip-path:polygon(0 0,calc(100% - 10px) 0,100% 50%,calc(100% - 10px) 100%,0 100%,10px 50%)}
ol.funnel li::before{content:counter(step) ". ";font-weight:600}
.empty{color:var(--muted)}
"""

SCRIPT = """
(function () {
  var search = document.getElementById('search');
  var finding = document.getElementById('finding');
  var tag = document.getElementById('tag');
  var kind = document.getElementById('kind');
  var count = document.getElementById('count');
  var cards = Array.prototype.slice.call(document.querySelectorAll('.card'));
  function apply() {
    var words = search.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shownCards = 0;
    cards.forEach(function (card) {
      var text = card.getAttribute('data-search');
      var codes = card.getAttribute('data-findings').split(' ');
      var tags = card.getAttribute('data-tags').split('\\n');
      var ok = words.every(function (w) { return text.indexOf(w) !== -1; }) &&
        (!finding.value || codes.indexOf(finding.value) !== -1) &&
        (!tag.value || tags.indexOf(tag.value) !== -1) &&
        (!kind.value || card.getAttribute('data-kind') === kind.value);
      card.hidden = !ok;
      if (ok) { shownCards += 1; }
    });
    count.textContent = shownCards + ' of ' + cards.length + ' shown';
  }
  // A link may carry the filters: page.html#search=checkout&finding=never-seen&tag=growth&kind=funnel
  var given = new URLSearchParams(window.location.hash.slice(1));
  [['search', search], ['finding', finding], ['tag', tag], ['kind', kind]].forEach(function (pair) {
    if (given.has(pair[0])) { pair[1].value = given.get(pair[0]); }
  });
  [search, finding, tag, kind].forEach(function (control) {
    control.addEventListener('input', apply);
    control.addEventListener('change', apply);
  });
  apply();
}());
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def policy() -> str:
    """The page's Content-Security-Policy: nothing but its own inline style and script (by hash)."""
    return (f"default-src 'none'; style-src {_hash(STYLE)}; script-src {_hash(SCRIPT)}; img-src 'none'; "
            "base-uri 'none'; form-action 'none'")


def e(text: str) -> str:
    """An outside string for HTML text or a quoted attribute: control characters made visible, then escaped."""
    return html.escape(shown(text), quote=True)


def lines(text: str) -> str:
    """A multi-line outside string (a description) for HTML text: each line as `e`, the line breaks kept (the
    description's style shows them)."""
    return html.escape(lines_shown(text), quote=True)


def script_json(data: object) -> str:
    """JSON safe inside a <script> element: no `</script>`, no `<!--`, no HTML entity, no JavaScript line break."""
    text = json.dumps(data, allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _badges(flags: Sequence[Flag]) -> str:
    if not flags:
        return '<span class="badge ok">healthy</span>'
    return "".join(f'<span class="badge {f.finding.severity}" data-code="{f.code}">{LABELS[f.code]}</span>'
                   for f in dict((f.code, f) for f in flags).values())


def _finding(flag: Flag) -> str:
    f = flag.finding
    hint = f' <span class="hint">— {e(f.hint)}</span>' if f.hint else ""
    where = f' <span class="hint">({e(f.source)})</span>' if f.source else ""
    return (f'<li class="finding {f.severity}" data-code="{flag.code}"><strong class="code">{flag.code}</strong> '
            f'<span class="subject">{e(f.subject)}</span>: <span class="message">{e(f.message)}</span>{where}'
            f'{hint}</li>')


def _uses(uses: Sequence[Use]) -> str:
    if not uses:
        return '<span class="empty">nothing</span>'
    return '<ul class="plain">' + "".join(f"<li>{e(u.describe())}</li>" for u in uses) + "</ul>"


def _attrs(search: Iterable[str], codes: Iterable[str], tags: Sequence[str], kind: str) -> str:
    text = " ".join(search).lower()
    # Each tag escaped on its own, joined by a real line break: the script splits on it (escaping the joined text
    # would turn the break into a visible `\n`, and a card with several tags would match none of them).
    return (f'data-search="{e(text)}" data-findings="{" ".join(codes)}" data-tags="{chr(10).join(e(t) for t in tags)}" '
            f'data-kind="{e(kind)}"')


def _metric(row: MetricRow, anchor: str, group_anchors: dict[tuple[str, str], str]) -> str:
    facts = [("project", f"<code>{e(row.project)}</code>"), ("type", e(row.type)),
             ("event key", f"<code>{e(row.event)}</code>" if row.event else '<span class="empty">none</span>'),
             ("defined at", f"<code>{e(row.defined_at)}</code>" if row.defined_at else '<span class="empty">not '
              'defined</span>'),
             ("in LaunchDarkly", "archived" if row.archived else "yes" if row.in_launchdarkly else "no"),
             ("last seen", e(when(row.last_seen)) if row.in_launchdarkly else "-")]
    if row.call_sites is not None:
        sites = "".join(f"<li><code>{e(str(s))}</code></li>" for s in row.call_sites)
        facts.append(("call sites", f'<ul class="plain">{sites}</ul>' if sites else '<span class="empty">none '
                      'found</span>'))
    facts.append(("used by", _uses(row.uses)))
    if row.groups:
        links = ", ".join(f'<a href="#{group_anchors.get((row.project, g), "")}">{e(g)}</a>' for g in row.groups)
        facts.append(("metric groups", links))
    for label, last in (("last in an experiment", row.last_experiment),
                        ("last in a guarded rollout", row.last_rollout)):
        if last is not None:
            at = f" ({e(when(last.at))})" if last.at is not None else ""
            facts.append((label, f"<code>{e(last.key)}</code> {e(last.name)}{at}"))
    if row.tags:
        facts.append(("tags", " ".join(f"<code>{e(t)}</code>" for t in row.tags)))
    findings = ('<ul class="findings">' + "".join(_finding(f) for f in row.flags) + "</ul>") if row.flags else ""
    description = f'<p class="description">{lines(row.description)}</p>' if row.description else ""
    attrs = _attrs((row.key, row.name, row.event or "", row.description, *row.tags, row.project),
                   [f.code for f in row.flags] or ["ok"], row.tags, row.kind)
    return (f'<article class="card metric" id="{anchor}" {attrs}><h3><span class="name">{e(row.name)}</span> '
            f'<span class="key">{e(row.key)}</span> <span class="badge kind">{e(row.kind or "?")}</span>'
            f'{_badges(row.flags)}</h3>{description}<dl>'
            + "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in facts) + f"</dl>{findings}</article>")


def _group(row: GroupRow, anchor: str, metric_anchors: dict[tuple[str, str], str]) -> str:
    steps = "".join(f'<li class="step"><a href="#{metric_anchors.get((row.project, k), "")}">{e(k)}</a></li>'
                    for k in row.metrics)
    members = (f'<ol class="funnel">{steps}</ol>' if row.kind == "funnel" else f'<ul class="plain members">{steps}'
               "</ul>") if row.metrics else '<span class="empty">no metrics</span>'
    facts = [("project", f"<code>{e(row.project)}</code>"), ("type", f"metric group ({e(row.kind or '?')})"),
             ("defined at", f"<code>{e(row.defined_at)}</code>" if row.defined_at else '<span class="empty">not '
              'defined</span>'), ("in LaunchDarkly", "yes" if row.in_launchdarkly else "no"),
             ("used by", _uses(row.uses))]
    if row.tags:
        facts.append(("tags", " ".join(f"<code>{e(t)}</code>" for t in row.tags)))
    description = f'<p class="description">{lines(row.description)}</p>' if row.description else ""
    attrs = _attrs((row.key, row.name, row.description, *row.tags, *row.metrics, row.project), ["ok"], row.tags,
                   row.kind)
    return (f'<article class="card group" id="{anchor}" {attrs}><h3><span class="name">{e(row.name)}</span> '
            f'<span class="key">{e(row.key)}</span> <span class="badge kind">{e(row.kind or "?")}</span></h3>'
            f'{description}{members}<dl>' + "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in facts)
            + "</dl></article>")


def _options(values: Iterable[tuple[str, str]], everything: str) -> str:
    return f'<option value="">{everything}</option>' + "".join(
        f'<option value="{e(value)}">{e(label)}</option>' for value, label in values)


def page(health: Health, *, color: bool = False) -> str:
    metric_anchors = {(r.project, r.key): f"metric-{i}" for i, r in enumerate(health.metrics)}
    group_anchors = {(g.project, g.key): f"group-{i}" for i, g in enumerate(health.groups)}
    tags = sorted({t for r in health.metrics for t in r.tags} | {t for g in health.groups for t in g.tags})
    kinds = sorted({r.kind for r in health.metrics if r.kind} | {g.kind for g in health.groups if g.kind})
    codes = [(c, LABELS[c]) for c in CODES if health.count(c)] + [("ok", "healthy")]
    metrics = "".join(_metric(r, metric_anchors[(r.project, r.key)], group_anchors) for r in health.metrics)
    groups = "".join(_group(g, group_anchors[(g.project, g.key)], metric_anchors) for g in health.groups)
    findings = "".join(_finding(f) for f in health.flags if f.about == "event")
    events = (f'<h2>Events no metric measures</h2><ul class="findings events">{findings}</ul>' if findings else "")
    notes = "".join(f"<p class=\"note\">note: {e(n)}</p>" for n in health.notes)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy()}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Metrics catalogue and health</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>Metrics catalogue and health</h1><p id="summary">{e(summary(health))} · {e(when(health.generated_at))}
· stale after {health.stale_days} days</p></header>
<div class="controls" role="search">
<input id="search" type="search" placeholder="Search key, name, event, description, tag" aria-label="Search">
<select id="finding" aria-label="Finding">{_options(codes, "every finding")}</select>
<select id="tag" aria-label="Tag">{_options(((t, t) for t in tags), "every tag")}</select>
<select id="kind" aria-label="Kind">{_options(((k, k) for k in kinds), "every kind")}</select>
<span id="count"></span>
</div>
<main>
{notes}{events}<h2>Metrics</h2>
<section id="metrics">{metrics or '<p class="empty">No metrics.</p>'}</section>
<h2>Metric groups</h2>
<section id="groups">{groups or '<p class="empty">No metric groups.</p>'}</section>
</main>
<script type="application/json" id="health-data">{script_json(as_json(health))}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""
