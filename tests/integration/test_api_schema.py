"""Property-based run of the whole OpenAPI schema (schemathesis): for every operation, generated valid
and invalid requests, authenticated as an admin with an API token, against the ASGI app.

Asserts: no 5xx ever; answers conform to the documented schema and content types; every API error is
JSON {"error": "..."}. The number of examples per operation is bounded so the run takes well under two
minutes on a small machine. Mutating operations run too (they may create users, revoke tokens, demote
the admin...): before each request the admin's access is restored through the services."""

from __future__ import annotations

import contextlib

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from mirrorwatch.errors import Conflict
from mirrorwatch.services import users

pytest_plugins = ("webfixtures",)

POSITIVE_EXAMPLES = 25
NEGATIVE_EXAMPLES = 10


class _Admin:
    """Keeps a working admin token whatever the generated requests did to the account."""

    def __init__(self, world) -> None:
        self.db, self.token = world.db, world.tokens["ada"]

    def headers(self) -> dict[str, str]:
        if users.user_for_token(self.db, self.token) is None or users.get_user(self.db, "ada").role != "admin":
            u = users.get_user(self.db, "ada")
            if u.disabled:
                with contextlib.suppress(Conflict):
                    users.set_disabled(self.db, "ada", False, actor="test")
            if u.role != "admin":
                users.set_role(self.db, "ada", "admin", actor="test")
            if users.user_for_token(self.db, self.token) is None:
                self.token = users.create_token(self.db, "ada", "schemathesis", actor="test")[1]
        return {"Authorization": f"Bearer {self.token}"}


def _exercise(op, mode, n: int, admin: _Admin, problems: list[str]) -> None:
    """Run `n` generated requests of one kind against one operation, collecting problems."""

    @settings(max_examples=n, deadline=None, database=None, derandomize=True, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=op.as_strategy(mode))
    def run(case):
        response = case.call(headers=admin.headers())
        where = f"{op.label} [{mode.value}] path={case.path_parameters} query={case.query}"
        if response.status_code >= 500:
            problems.append(f"{response.status_code} on {where}: {response.text[:200]}")
            return
        if op.path.startswith("/api/") and 400 <= response.status_code < 500:
            body = response.json()
            if not isinstance(body, dict) or not isinstance(body.get("error"), str):
                problems.append(f"error without 'error' field on {where}: {response.text[:200]}")
        checks = [not_a_server_error]
        if mode is schemathesis.GenerationMode.POSITIVE:
            checks += [response_schema_conformance, content_type_conformance]
        try:
            case.validate_response(response, checks=checks)
        except Exception as exc:  # a check failed: keep going, report all at the end
            problems.append(f"check failed on {where}: {str(exc)[:300]}")

    try:
        run()
    except Unsatisfiable:  # no invalid request exists for an operation without parameters
        assert mode is schemathesis.GenerationMode.NEGATIVE


@pytest.mark.slow
def test_openapi_schema_no_server_errors(world, app):
    admin = _Admin(world)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, headers=admin.headers())
    problems: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1
        _exercise(op, schemathesis.GenerationMode.POSITIVE, POSITIVE_EXAMPLES, admin, problems)
        _exercise(op, schemathesis.GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, admin, problems)
    assert operations >= 35
    assert not problems, "\n".join(problems[:20])
