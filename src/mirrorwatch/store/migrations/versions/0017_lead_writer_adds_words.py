"""name_vocab's insert trigger skips a statement whose transaction adds the words itself (the importer)

Revision ID: 0010_writer_words
Revises: 0009_namesearch
Create Date: 2026-11-30 01:40:00

The bulk importer sets mirrorwatch.writer_adds_words for its transaction and inserts the new words of
each batch from what it already holds (store/nameindex.py): the statement-level trigger re-read every
batch's transition table, split every name and anti-joined all its words, 13 s of the server's 35 s for
1M entries. Every other writer (bank add, exchange, edits) is unchanged.
"""

from alembic import op

from mirrorwatch.store import nameindex

revision = "0010_writer_words"
down_revision = "0009_namesearch"
branch_labels = None
depends_on = None

_OLD_INSERT_FUNCTION = (
    "CREATE OR REPLACE FUNCTION name_vocab_from_entries() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " INSERT INTO name_vocab (token, keys) SELECT w, name_typo_keys(w) FROM (SELECT DISTINCT w FROM new_entries,"
    " unnest(string_to_array(new_entries.name_norm, ' ')) AS w) AS words"
    " WHERE w <> '' AND NOT EXISTS (SELECT 1 FROM name_vocab v WHERE v.token = w);"
    " RETURN NULL; END $$"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(nameindex.PG_INSERT_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_OLD_INSERT_FUNCTION)
