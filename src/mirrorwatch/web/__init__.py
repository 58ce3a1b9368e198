"""The web app and JSON API (FastAPI, server-rendered Jinja2 pages): `create_app(db)` in web/app.py.

Layout: app.py (factory), auth.py (sessions, tokens, roles, CSRF), middleware.py (body limits,
security headers), errors.py (errors to JSON or pages), render.py (templates, flash), charts.py
(inline SVG), schemas.py (API models), routes/ (one module per concern, pages and api_*),
templates/ and static/. Routes only parse, call mirrorwatch.services and render."""
