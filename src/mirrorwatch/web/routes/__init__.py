"""Routes, one module per concern: pages (server-rendered) and their JSON twins under /api/."""

from __future__ import annotations

from mirrorwatch.web.routes import (
    admin,
    api_admin,
    api_banks,
    api_lookup,
    api_notify,
    api_reports,
    api_review,
    api_scans,
    banks,
    entries,
    exchange,
    notify,
    reports,
    review,
    scans,
    search,
    session,
)

ROUTERS = [
    session.api, session.router, search.router, entries.router, review.router, reports.router, banks.router,
    admin.router, scans.router, notify.router,
    api_lookup.router, api_review.router, api_reports.router, api_banks.router, api_admin.router, api_scans.router,
    api_notify.router,
    exchange.api, exchange.router,
]
