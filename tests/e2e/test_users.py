"""Accounts and API tokens: hashing, roles, tokens, audit rows, and the `mirrorwatch user` commands."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from mirrorwatch.errors import Conflict, InvalidInput, NotFound
from mirrorwatch.services import users
from mirrorwatch.store.models import ApiToken, Audit, User


def test_password_hash_is_salted_argon2id_and_verifies():
    a = users.hash_password("correct horse")
    b = users.hash_password("correct horse")
    assert a != b  # random salt
    assert a.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert users.verify_password(a, "correct horse")
    assert not users.verify_password(a, "correct hors")
    assert not users.verify_password(a, "")
    assert not users.verify_password("garbage", "correct horse")
    assert not users.verify_password("scrypt$x$y$z$w$v", "correct horse")
    assert not users.verify_password(None, "correct horse")


@pytest.mark.parametrize("pw", ["short", "", "x" * 1025])
def test_password_rules(pw):
    with pytest.raises(InvalidInput):
        users.hash_password(pw)


def test_add_user_and_authenticate(db):
    u = users.add_user(db, "alice", "reviewer", "alice-password", actor="admin1")
    assert (u.name, u.role, u.has_password, u.disabled) == ("alice", "reviewer", True, False)
    assert users.authenticate(db, "alice", "alice-password").id == u.id
    assert users.authenticate(db, "alice", "wrong-password") is None
    assert users.authenticate(db, "nobody", "alice-password") is None
    with db.session() as s:
        stored = s.scalar(select(User.password_hash).where(User.name == "alice"))
        audit = s.scalars(select(Audit).where(Audit.action == "user.add")).one()
    assert "alice-password" not in stored
    assert (audit.user, audit.object_id, audit.detail["role"]) == ("admin1", str(u.id), "reviewer")


@pytest.mark.parametrize("name", ["", " ", "-lead", "a b", "x" * 101, "<script>", "a/b"])
def test_bad_user_names(db, name):
    with pytest.raises(InvalidInput):
        users.add_user(db, name, "viewer", "password-1")


def test_duplicate_user_and_unknown_role(db):
    users.add_user(db, "bob", "viewer", "password-1")
    with pytest.raises(Conflict):
        users.add_user(db, "bob", "viewer", "password-2")
    with pytest.raises(InvalidInput):
        users.add_user(db, "carl", "superuser", "password-1")
    with pytest.raises(NotFound):
        users.set_role(db, "nobody", "admin")


def test_roles_rank():
    v = users.UserView(1, "v", "viewer", False, True, None)
    r = users.UserView(2, "r", "reviewer", False, True, None)
    a = users.UserView(3, "a", "admin", False, True, None)
    assert v.can("viewer") and not v.can("reviewer")
    assert r.can("reviewer") and not r.can("admin")
    assert a.can("admin") and a.can("viewer")
    assert not users.UserView(4, "d", "admin", True, True, None).can("viewer")


def test_last_admin_cannot_be_demoted_or_disabled(db):
    users.add_user(db, "root", "admin", "password-1")
    with pytest.raises(Conflict):
        users.set_role(db, "root", "viewer")
    with pytest.raises(Conflict):
        users.set_disabled(db, "root", True)
    users.add_user(db, "root2", "admin", "password-1")
    assert users.set_role(db, "root", "viewer").role == "viewer"


def test_password_change_changes_session_tag_and_disable_blocks_login(db):
    u = users.add_user(db, "dana", "viewer", "password-1")
    u2 = users.set_password(db, "dana", "password-2")
    assert u.session_tag != u2.session_tag
    assert users.authenticate(db, "dana", "password-1") is None
    assert users.authenticate(db, "dana", "password-2") is not None
    users.set_disabled(db, "dana", True)
    assert users.authenticate(db, "dana", "password-2") is None
    assert users.get_active_user(db, u.id) is None


def test_tokens_are_shown_once_stored_hashed_and_revocable(db):
    u = users.add_user(db, "erin", "reviewer", None)
    assert not u.has_password
    assert users.authenticate(db, "erin", "anything-at-all") is None  # token-only account
    t, secret = users.create_token(db, "erin", "nightly")
    assert secret.startswith("mw_") and len(secret) > 40
    assert t.prefix == secret[:11]
    with db.session() as s:
        row = s.get(ApiToken, t.id)
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in row.token_hash
    assert users.user_for_token(db, secret).name == "erin"
    assert users.user_for_token(db, secret + "x") is None
    assert users.user_for_token(db, "not-a-token") is None
    listed = users.list_tokens(db, user_id=u.id)
    assert [x.id for x in listed] == [t.id]
    assert listed[0].last_used_at is not None  # touched by the successful use
    users.revoke_token(db, t.id, actor="erin")
    assert users.user_for_token(db, secret) is None
    with db.session() as s:
        actions = [a.action for a in s.scalars(select(Audit).order_by(Audit.id))]
    assert actions[-2:] == ["token.create", "token.revoke"]


def test_revoke_other_users_token_looks_absent(db):
    users.add_user(db, "f1", "viewer", "password-1")
    u2 = users.add_user(db, "f2", "viewer", "password-1")
    t, _ = users.create_token(db, "f1")
    with pytest.raises(NotFound):
        users.revoke_token(db, t.id, owner_id=u2.id)
    with pytest.raises(NotFound):
        users.revoke_token(db, 99999)


def test_disabled_user_tokens_stop_working(db):
    users.add_user(db, "admin0", "admin", "password-1")
    users.add_user(db, "gus", "viewer", "password-1")
    _, secret = users.create_token(db, "gus")
    users.set_disabled(db, "gus", True)
    assert users.user_for_token(db, secret) is None
    with pytest.raises(Conflict):
        users.create_token(db, "gus")


# --- CLI -------------------------------------------------------------------------------------------

def test_cli_user_add_with_password_stdin_set_role_and_list(cli, db_path):
    r = cli("user", "add", "hana", "--role", "viewer", "--password-stdin", input="hana-password\n")
    assert r.returncode == 0, r.stderr
    assert "created user hana" in r.stdout
    r = cli("user", "set-role", "hana", "reviewer")
    assert r.returncode == 0 and "hana is now reviewer" in r.stdout
    r = cli("user", "list", "--json")
    data = json.loads(r.stdout)
    assert [(u["name"], u["role"]) for u in data] == [("hana", "reviewer")]
    from mirrorwatch.store.db import Database

    assert users.authenticate(Database.open(str(db_path)), "hana", "hana-password") is not None


def test_cli_user_add_generates_password(cli, db_path):
    r = cli("user", "add", "ivan", "--role", "admin", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["role"] == "admin" and len(data["password"]) >= 16
    from mirrorwatch.store.db import Database

    assert users.authenticate(Database.open(str(db_path)), "ivan", data["password"]) is not None


@pytest.mark.slow
def test_cli_set_role_tokens_and_errors(cli):
    assert cli("user", "add", "jo", "--password-stdin", input="jo-password-1\n").returncode == 0
    r = cli("user", "set-role", "jo", "emperor")
    assert r.returncode != 0 and "unknown role" in r.stderr and "Traceback" not in r.stderr
    r = cli("user", "token", "create", "jo", "--name", "script")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("mw_")
    r = cli("user", "token", "list", "--json")
    tok = json.loads(r.stdout)[0]
    assert tok["prefix"] == secret[:11] and "token" not in tok
    assert secret not in r.stdout
    r = cli("user", "token", "revoke", str(tok["id"]))
    assert r.returncode == 0 and "revoked" in r.stdout
    r = cli("user", "token", "revoke", "4242")
    assert r.returncode == 3 and "no token" in r.stderr


def _legacy_scrypt(password: str) -> str:
    """A hash as releases before argon2id stored it (scrypt, N=2^14)."""
    import base64
    import os

    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_legacy_scrypt_hash_still_verifies_and_becomes_argon2id_at_sign_in(db):
    u = users.add_user(db, "lena", "viewer", "lena-password")
    with db.session() as s:
        s.get(User, u.id).password_hash = _legacy_scrypt("lena-password")
    assert users.authenticate(db, "lena", "wrong-password") is None
    with db.session() as s:
        assert s.get(User, u.id).password_hash.startswith("scrypt$")  # a wrong password changes nothing
    signed = users.authenticate(db, "lena", "lena-password")
    assert signed is not None and signed.session_tag == u.session_tag  # sessions carry on
    with db.session() as s:
        stored = s.get(User, u.id).password_hash
        assert stored.startswith("$argon2id$") and not users.needs_rehash(stored)
        assert s.scalar(select(Audit.action).where(Audit.action == "user.password_rehash")) is not None
    assert users.authenticate(db, "lena", "lena-password") is not None
    assert not users.verify_password("scrypt$1099511627776$8$1$AAAA$AAAA", "lena-password")  # absurd cost refused


def test_end_sessions_moves_the_epoch_and_is_audited(db):
    u = users.add_user(db, "mo", "viewer", "mo-password-1")
    v = users.end_sessions(db, "mo", actor="boss")
    assert v.session_tag != u.session_tag
    assert users.get_active_user(db, u.id).session_tag == v.session_tag
    with db.session() as s:
        row = s.scalar(select(Audit).where(Audit.action == "user.sessions_end"))
        assert row is not None and row.user == "boss"
    with pytest.raises(NotFound):
        users.end_sessions(db, "nobody-here")


def test_cli_user_logout_ends_sessions(cli, db_path):
    assert cli("user", "add", "nia", "--password-stdin", input="nia-password\n").returncode == 0
    from mirrorwatch.store.db import Database

    before = users.get_user(Database.open(str(db_path)), "nia").session_tag
    r = cli("user", "logout", "nia")
    assert r.returncode == 0 and "every web session of nia has ended" in r.stdout
    assert users.get_user(Database.open(str(db_path)), "nia").session_tag != before
    r = cli("user", "logout", "nobody-here")
    assert r.returncode != 0 and "Traceback" not in r.stderr
