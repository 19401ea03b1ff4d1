"""The report as one self-contained HTML file: tables and inline SVG charts.

No script, no external asset: the charts are SVG drawn here, so their Chinese
labels are set in the reader's system fonts like the rest of the page (no
font has to be embedded or installed). Every text that comes from data is
escaped with html.escape.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from string import Template

from tuanjian.tools.report.report import Report
from tuanjian.tools.report.texts import texts

TEMPLATE = Path(__file__).with_name("template.html")
TOP_GROUPS = 20
CHART_GROUPS = 10
MAX_VARIANTS = 5
MAX_LABEL = 18

GREEN, RED, BLUE, ORANGE, PURPLE = "#16a34a", "#c8102e", "#2563eb", "#d97706", "#7c3aed"


def e(value) -> str:
    return escape(str(value), quote=True)


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def shorten(text: str, limit: int = MAX_LABEL) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def faq_titles(responses_file: Path) -> dict[str, str]:
    """faq_x -> its short Chinese title (utter_topic_faq_x in the domain)."""
    import yaml

    try:
        responses = (yaml.safe_load(Path(responses_file).read_text("utf-8")) or {}).get("responses") or {}
    except (OSError, yaml.YAMLError):
        return {}
    titles = {}
    for name, variants in responses.items():
        if name.startswith("utter_topic_faq_") and variants and isinstance(variants[0], dict):
            titles[name[len("utter_topic_"):]] = str(variants[0].get("text", "")).strip()
    return titles


# --------------------------------------------------------------------------- charts

def _svg_open(width: int, height: int, title: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{e(title)}">',
            f"<title>{e(title)}</title>"]


def _legend(series: Sequence[tuple[str, str]], x: float) -> list[str]:
    parts = []
    for name, color in series:
        parts.append(f'<rect x="{x:.0f}" y="4" width="12" height="12" fill="{color}"/>'
                     f'<text x="{x + 16:.0f}" y="15" font-size="12" fill="#374151">{e(name)}</text>')
        x += 28 + 13 * len(name)
    return parts


def hbar_chart(title: str, rows: Sequence[tuple[str, Sequence[int]]], series: Sequence[tuple[str, str]],
               width: int = 720, label_width: int = 250, bar: int = 20, gap: int = 8) -> str:
    """Horizontal (stacked) bars: one row per label, one segment per series."""
    legend = 24 if len(series) > 1 else 0
    height = legend + gap + len(rows) * (bar + gap)
    top = max((sum(values) for _, values in rows), default=0) or 1
    plot = width - label_width - 48
    parts = _svg_open(width, height, title)
    if legend:
        parts += _legend(series, label_width)
    for index, (label, values) in enumerate(rows):
        y = legend + gap + index * (bar + gap)
        parts.append(f'<text x="{label_width - 8}" y="{y + bar * 0.72:.1f}" text-anchor="end" '
                     f'font-size="13" fill="#1f2937">{e(shorten(label))}<title>{e(label)}</title></text>')
        x = float(label_width)
        for (name, color), value in zip(series, values, strict=False):
            if value:
                w = value / top * plot
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{color}">'
                             f'<title>{e(label)} · {e(name)}: {value}</title></rect>')
                x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar * 0.72:.1f}" font-size="12" '
                     f'fill="#374151">{sum(values)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(title: str, columns: Sequence[tuple[str, Sequence[int]]],
                 series: Sequence[tuple[str, str]], height: int = 220) -> str:
    """Vertical stacked columns, one per label (days), with every k-th label shown."""
    n = max(len(columns), 1)
    width = max(720, 48 + n * 8)
    left, legend, bottom = 40, 24, 24
    plot_w, plot_h = width - left - 8, height - legend - bottom - 8
    step = plot_w / n
    top = max((sum(values) for _, values in columns), default=0) or 1
    every = max(1, math.ceil(n / 12))
    base = legend + 8 + plot_h
    parts = _svg_open(width, height, title) + _legend(series, left)
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - 8}" y2="{base}" stroke="#9ca3af"/>')
    parts.append(f'<line x1="{left}" y1="{legend + 8}" x2="{width - 8}" y2="{legend + 8}" '
                 f'stroke="#e5e7eb"/><text x="{left - 6}" y="{legend + 12}" text-anchor="end" '
                 f'font-size="11" fill="#6b7280">{top}</text>')
    parts.append(f'<text x="{left - 6}" y="{base + 4}" text-anchor="end" font-size="11" fill="#6b7280">0</text>')
    for index, (label, values) in enumerate(columns):
        w = min(step * 0.7, 40.0)
        x = left + index * step + (step - w) / 2
        y = float(base)
        for (name, color), value in zip(series, values, strict=False):
            if value:
                h = value / top * plot_h
                y -= h
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{color}">'
                             f'<title>{e(label)} · {e(name)}: {value}</title></rect>')
        if index % every == 0:
            parts.append(f'<text x="{x + w / 2:.1f}" y="{base + 16}" text-anchor="middle" '
                         f'font-size="11" fill="#6b7280">{e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- page

def _card(label: str, value: str, detail: str) -> str:
    return (f'<div class="card"><div class="label">{e(label)}</div><div class="value">{e(value)}</div>'
            f'<div class="detail">{e(detail)}</div></div>')


def _table(headers: Sequence[tuple[str, bool]], rows: Sequence[Sequence[str]]) -> str:
    """headers: (title, numeric); cells are already escaped HTML."""
    head = "".join(f'<th{" class=n" if numeric else ""}>{e(title)}</th>' for title, numeric in headers)

    def cells(row: Sequence[str]) -> str:
        return "".join(f'<td{" class=n" if numeric else ""}>{cell}</td>'
                       for cell, (_, numeric) in zip(row, headers, strict=False))

    body = "".join(f"<tr>{cells(row)}</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _empty(text: str) -> str:
    return f'<p class="empty">{e(text)}</p>'


def _faq_label(faq: str, titles: Mapping[str, str]) -> str:
    return titles.get(faq) or faq


def _reason_title(reason: str) -> str:
    """A handoff reason's title ("reasons" in texts.yml), else the reason itself."""
    return texts()["reasons"].get(reason, reason)


def render_html(report: Report, titles: Mapping[str, str] | None = None, top: int = TOP_GROUPS) -> str:
    titles = titles or {}
    t = texts()
    period = report.period
    tz_name = getattr(period.tz, "key", None) or str(period.tz)
    subtitle = t["subtitle"].format(first=period.first.isoformat(), last=period.last.isoformat(), tz=tz_name,
                                    generated=report.generated_at.strftime('%Y-%m-%d %H:%M'))
    body: list[str] = []

    # Key figures.
    cards = t["cards"]
    body.append('<section class="cards">')
    body.append(_card(cards["conversations"], str(report.conversations),
                      cards["conversations_detail"].format(with_ticket=report.conversations_with_ticket)))
    body.append(_card(cards["deflection"], percent(report.deflection_rate),
                      cards["deflection_detail"].format(deflected=report.deflected,
                                                        conversations=report.conversations)))
    body.append(_card(cards["left_after_fallback"], str(report.left_after_fallback),
                      cards["left_after_fallback_detail"]))
    body.append(_card(cards["fallback"], percent(report.fallback_rate),
                      cards["fallback_detail"].format(fallbacks=report.fallback_messages,
                                                      messages=report.member_messages)))
    body.append(_card(cards["tickets"], str(report.tickets),
                      cards["tickets_detail"].format(to_staff=report.messages_to_staff)))
    body.append(_card(cards["ratings"], cards["ratings_value"].format(up=report.ratings_up, down=report.ratings_down),
                      cards["ratings_detail"]))
    body.append("</section>")

    # Conversations per day.
    daily = t["daily"]
    body.append(f"<h2>{e(daily['heading'])}</h2>")
    if report.conversations:
        columns = [(d.day.strftime("%m-%d"), (d.deflected, d.with_ticket)) for d in report.daily]
        body.append('<div class="chart">' + column_chart(
            daily["chart"], columns, ((daily["deflected"], GREEN), (daily["handed_off"], RED))) + "</div>")
    else:
        body.append(_empty(daily["empty"]))

    # The trend across retrains: conversations by the model that served them.
    models = t["models"]
    body.append(f"<h2>{e(models['heading'])}</h2>")
    if report.models:
        body.append(_table(((models["model"], False), (models["first_seen"], False), (models["conversations"], True),
                            (models["deflected"], True), (models["rate"], True)), [
            (f"<code>{e(m.model_id[:12])}</code>", e(m.first_seen.strftime("%Y-%m-%d %H:%M")), str(m.conversations),
             str(m.deflected), e(percent(m.deflection_rate))) for m in report.models]))
    else:
        body.append(_empty(models["empty"]))

    # Answers and ratings per FAQ.
    faq_texts = t["faqs"]
    body.append(f"<h2>{e(faq_texts['heading'])}</h2>")
    faqs = list(report.answers_per_faq)
    faqs += [f for f in report.ratings_per_faq if f not in report.answers_per_faq]
    faqs += sorted(f for f in titles if f not in faqs)
    if report.answers_per_faq:
        rows: list[tuple[str, tuple[int, ...]]] = [(_faq_label(f, titles), (n,))
                                                   for f, n in report.answers_per_faq.items()]
        body.append('<div class="chart">' + hbar_chart(
            faq_texts["answers_chart"], rows, ((faq_texts["answers"], BLUE),)) + "</div>")
    else:
        body.append(_empty(faq_texts["empty"]))
    table_rows: list[tuple[str, ...]] = []
    for faq in faqs:
        rating = report.ratings_per_faq.get(faq, {"up": 0, "down": 0})
        rated = rating["up"] + rating["down"]
        table_rows.append((f"{e(_faq_label(faq, titles))}<br><code>{e(faq)}</code>",
                           str(report.answers_per_faq.get(faq, 0)), str(rating["up"]), str(rating["down"]),
                           e(percent(rating["up"] / rated if rated else None))))
    body.append(_table(((faq_texts["faq"], False), (faq_texts["answers"], True), (faq_texts["up"], True),
                        (faq_texts["down"], True), (faq_texts["up_rate"], True)), table_rows))
    if report.ratings_per_faq:
        rows = [(_faq_label(f, titles), (r["up"], r["down"])) for f, r in report.ratings_per_faq.items()]
        body.append('<div class="chart">' + hbar_chart(
            faq_texts["ratings_chart"], rows, ((faq_texts["up"], GREEN), (faq_texts["down"], RED))) + "</div>")

    # Unanswered questions.
    unanswered = t["unanswered"]
    body.append(f"<h2>{e(unanswered['heading'])}</h2>")
    groups = report.unanswered[:top]
    if groups:
        body.append("<p>" + e(unanswered["summary"].format(
            questions=report.unanswered_questions, threshold=report.threshold,
            groups=len(report.unanswered), shown=len(groups))) + "</p>")
        rows = [(f"#{i} {g.representative}", (g.size,)) for i, g in enumerate(groups[:CHART_GROUPS], 1)]
        body.append('<div class="chart">' + hbar_chart(
            unanswered["chart"], rows, ((unanswered["count"], ORANGE),)) + "</div>")
        table_rows = []
        for i, group in enumerate(groups, 1):
            others = [e(unanswered["variant"].format(text=text, count=count))
                      for text, count in group.variants[1:1 + MAX_VARIANTS]]
            more = len(group.variants) - 1 - len(others)
            if more > 0:
                others.append(e(unanswered["more_variants"].format(more=more)))
            table_rows.append((str(i), e(group.representative), str(group.size),
                               f'<span class="variants">{e(unanswered["separator"]).join(others) or "—"}</span>'))
        body.append(_table((("#", True), (unanswered["representative"], False), (unanswered["count"], True),
                            (unanswered["variants"], False)), table_rows))
    else:
        body.append(_empty(unanswered["empty"]))

    # The review inbox.
    review_texts = t["review"]
    body.append(f"<h2>{e(review_texts['heading'])}</h2>")
    if report.review is not None:
        review = report.review
        body.append("<p>" + e(review_texts["summary"].format(
            awaiting=review.awaiting, labelled=sum(review.labelled.values()), new_topics=review.new_topics,
            dismissed=review.dismissed)) + "</p>")
        if review.labelled:
            body.append(_table(((review_texts["intent"], False), (review_texts["labelled"], True)), [
                (f"{e(_faq_label(intent, titles))}<br><code>{e(intent)}</code>", str(n))
                for intent, n in review.labelled.items()]))
        else:
            body.append(_empty(review_texts["empty"]))

    # Handoff reasons.
    handoffs = t["handoffs"]
    body.append(f"<h2>{e(handoffs['heading'])}</h2>")
    if report.handoff_reasons:
        rows = [(_reason_title(r), (n,)) for r, n in report.handoff_reasons.items()]
        body.append('<div class="chart">' + hbar_chart(
            handoffs["chart"], rows, ((handoffs["tickets"], PURPLE),)) + "</div>")
        body.append(_table(((handoffs["reason"], False), (handoffs["tickets"], True), (handoffs["share"], True)), [
            (f"{e(_reason_title(r))}<br><code>{e(r)}</code>", str(n), e(percent(n / report.tickets)))
            for r, n in report.handoff_reasons.items()]))
    else:
        body.append(_empty(handoffs["empty"]))

    # How the figures are counted.
    notes = t["notes"]
    body.append(f"<h2>{e(notes['heading'])}</h2>\n<ul class=\"notes\">\n"
                + "".join(f"<li>{e(item)}</li>\n" for item in notes["items"]) + "</ul>")
    return Template(TEMPLATE.read_text("utf-8")).substitute(
        title=e(t["title"]), subtitle=e(subtitle), body="\n".join(body))
