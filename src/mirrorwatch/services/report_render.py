"""Report text and Markdown from editable Jinja templates: one renderer for the CLI and the web.

The templates shipped with mirrorwatch live in `mirrorwatch/reports_templates/` (`report.txt.j2`,
`report.md.j2`). A team edits its own copies in a folder named by `MIRRORWATCH_REPORT_TEMPLATES`:
`<folder>/<hub>/report.txt.j2` (one hub, e.g. `hf/`) wins over `<folder>/report.txt.j2` (every hub),
which wins over the shipped one.

Templates are edited by users, so they run in Jinja's immutable sandbox (no attribute starting with
`_`, no calls that change data, bounded `range`) with StrictUndefined: a template reaching for Python
internals or a misspelt variable fails with a one-line InvalidInput naming the template, never a
traceback and never half a report. Autoescaping is off (this is text, not HTML); instead every hub-
or user-controlled value is passed through `display.safe_text` before the template sees it, so no
control or bidi character reaches the rendered report. Markdown templates escape free text with the
`md` filter and links with `mdurl`.

Variables: `report` (id, hub, hub_name, title, state, created_by, created_day, sent_day, note,
n_files, n_repos, outcome), `items` (n, url, repo_id, repo_type, repo_kind ("dataset", "Space"; ""
for a model repo), author, path, size, sha256, first_seen,
last_seen, entry_name, entry_url, bank, tier, tier_name, score, why, last_status, match_id),
`policy` and `route` (the hub's policy clause and reporting route from the hub registry, or None),
`internal` (true for a local folder: no outside hub, the report is for internal review)."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mirrorwatch.display import safe_text
from mirrorwatch.errors import InvalidInput
from mirrorwatch.hubs.registry import HUBS, repo_type_label, report_policy, report_route
from mirrorwatch.services.matches import where_found

# `rep` below is a services.reports.ReportView; not imported, since reports imports this module.
ReportView = Any

ENV_VAR = "MIRRORWATCH_REPORT_TEMPLATES"
BUILTIN = Path(__file__).resolve().parent.parent / "reports_templates"
TEMPLATES = {"text": "report.txt.j2", "markdown": "report.md.j2"}
MAX_OUTPUT = 20_000_000  # characters: a template looping wildly stops here

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")
_PLAIN_URL = re.compile(r"https?://[^\s<>()\[\]`\\]+\Z")


def md(value: object) -> str:
    """Text for Markdown: characters that make links, emphasis, headings or HTML shown as themselves."""
    text = "" if value is None else str(value)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return re.sub(r"^(\s*)([-=])", r"\1\\\2", text)  # a leading - or = would make a list or a heading


def mdurl(value: object) -> str:
    """A link for Markdown: an autolink when it is a plain http(s) URL, escaped text otherwise."""
    text = "" if value is None else str(value)
    return f"<{text}>" if _PLAIN_URL.match(text) else md(text)


def _day(d: datetime | None) -> str:
    return d.strftime("%Y-%m-%d") if d else "-"


def _s(value: str | None) -> str | None:
    return None if value is None else safe_text(value)


def _env(user_dir: str | None) -> ImmutableSandboxedEnvironment:
    loaders = []
    if user_dir:
        path = Path(user_dir)
        if not path.is_dir():
            raise InvalidInput(f"{ENV_VAR} names {safe_text(user_dir)!r}, which is not a folder")
        loaders.append(FileSystemLoader(str(path)))
    loaders.append(FileSystemLoader(str(BUILTIN)))
    env = ImmutableSandboxedEnvironment(loader=ChoiceLoader(loaders), autoescape=False, undefined=StrictUndefined,
                                        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                                        auto_reload=False)
    env.filters["md"] = md
    env.filters["mdurl"] = mdurl
    return env


def context(rep: ReportView) -> dict[str, Any]:
    """What a template sees: plain values, every hub- or user-controlled string made safe to display."""
    spec = HUBS.get(rep.hub)
    items = []
    for n, it in enumerate(rep.items, 1):
        m = it.match
        items.append({
            "n": n, "match_id": m.id, "url": _s(m.url), "repo_id": safe_text(m.repo_id), "author": _s(m.author),
            "repo_type": m.repo_type, "repo_kind": repo_type_label(m.hub, m.repo_type, default_too=False),
            # an archive member reads "member M of archive A" wherever a template shows the file
            "path": safe_text(where_found(m)), "member": _s(m.member), "archive": _s(m.archive), "size": m.size,
            "sha256": _s(m.sha256), "first_seen": _day(m.first_seen),
            "last_seen": _day(m.last_seen), "entry_name": _s(m.entry_name), "entry_url": _s(m.entry_url),
            "bank": _s(m.bank), "tier": m.tier, "tier_name": safe_text(m.tier_name), "score": f"{m.score:g}",
            "why": [safe_text(w) for w in m.why], "last_status": _s(it.last_status),
        })
    report = {
        "id": rep.id, "hub": safe_text(rep.hub), "hub_name": safe_text(rep.hub_name), "title": safe_text(rep.title),
        "state": rep.state, "created_by": safe_text(rep.created_by), "created_day": _day(rep.created_at),
        "sent_day": _day(rep.sent_at) if rep.sent_at else None, "note": _s(rep.note),
        "n_files": len(rep.items), "n_repos": len({(it.match.repo_type, it.match.repo_id) for it in rep.items}),
        "outcome": dict(rep.outcome),
    }
    return {"report": report, "items": items, "policy": report_policy(rep.hub), "route": report_route(rep.hub),
            "internal": spec is not None and spec.kind == "folder"}


def render(rep: ReportView, fmt: str = "text", *, template_dir: str | None = None) -> str:
    """The report rendered by its template (`fmt` "text" or "markdown"); InvalidInput when a user's
    template is missing pieces, breaks the sandbox or does not parse."""
    name = TEMPLATES.get(fmt)
    if name is None:
        raise InvalidInput(f"no template for format {fmt!r}: use {' or '.join(TEMPLATES)}")
    env = _env(template_dir if template_dir is not None else os.environ.get(ENV_VAR) or None)
    tpl = None
    try:
        tpl = env.select_template([f"{rep.hub}/{name}", name] if _plain_name(rep.hub) else [name])
        out = tpl.render(context(rep))
    except TemplateNotFound as exc:
        raise InvalidInput(f"report template {exc.name!r} not found") from None
    except TemplateError as exc:  # includes the sandbox's SecurityError and StrictUndefined's errors
        where = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        which = getattr(exc, "name", None) or getattr(tpl, "name", None) or name
        raise InvalidInput(f"report template {which}{where} failed: "
                           f"{safe_text(str(exc))[:300]}") from None
    if len(out) > MAX_OUTPUT:
        raise InvalidInput(f"report template {name} produced more than {MAX_OUTPUT:,} characters")
    return out


def _plain_name(hub: str) -> bool:
    return bool(re.fullmatch(r"[a-z0-9_-]{1,40}", hub))
