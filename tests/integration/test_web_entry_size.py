"""The model page shows a banked file size (issue 10: banks learn file sizes)."""

from __future__ import annotations

from mirrorwatch.bank.sheets import parse_sheet
from mirrorwatch.services.imports import import_sheet
from mirrorwatch.services.lookup import lookup
from webdata import fake_sha

pytest_plugins = ("webfixtures",)


def test_entry_page_shows_the_banked_size(world, client_as):
    sha = fake_sha("sized-entry")
    sheet = parse_sheet(f"name,sha256,file size\nSized Example,{sha},\"151,234,567\"\n".encode(), name="s.csv")
    import_sheet(world.db, "Synthetic removed models", sheet, "s.csv")
    (entry,) = lookup(world.db, sha).results
    c, _ = client_as("vic")
    page = c.get(f"/entries/{entry.id}").text
    assert "<th>size</th>" in page and "151234567 bytes" in page
