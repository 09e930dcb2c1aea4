"""Full-text search of emails and of Leads and Contacts: each row's words (search_text), indexed
by FTS5 on SQLite and by a GIN index on PostgreSQL; existing rows indexed

Revision ID: hfts1_full_text_search
Revises: hpg1_read_side_indexes
Create Date: 2026-12-02 00:20:00
"""
from alembic import op
import sqlalchemy as sa

from fulltext import index_text

revision = 'hfts1_full_text_search'
down_revision = 'hpg1_read_side_indexes'
branch_labels = None
depends_on = None

BATCH_ROWS = 2000
# table: the columns whose words it is searched by (as models.Email.SEARCHED, models.Record.SEARCHED).
SEARCHED = {
    "emails": ("subject", "from_name", "from_address", "to_text", "cc_text", "text_body"),
    "records": ("first_name", "last_name", "company", "email"),
}
# The words are indexed as they are: `ascii` splits only on the spaces (and ASCII punctuation,
# which fulltext.index_text leaves none of) and keeps every other character; detail=none and
# columnsize=0 keep no positions or sizes: searches need neither (no phrases, no ranking).
FTS5_OPTIONS = "content='{table}', content_rowid='id', tokenize='ascii', detail=none, columnsize=0"
FTS5_TRIGGERS = (
    """CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN
  INSERT INTO {table}_fts(rowid, search_text) VALUES (new.id, new.search_text);
END""",
    """CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN
  INSERT INTO {table}_fts({table}_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
END""",
    """CREATE TRIGGER {table}_fts_update AFTER UPDATE OF search_text ON {table} BEGIN
  INSERT INTO {table}_fts({table}_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
  INSERT INTO {table}_fts(rowid, search_text) VALUES (new.id, new.search_text);
END""",
)
# The lexemes are the words themselves (no parser in between): the same words as on SQLite.
PG_INDEX = "CREATE INDEX ix_{table}_search ON {table} USING gin (array_to_tsvector(string_to_array(search_text, ' ')))"


def upgrade():
    bind = op.get_bind()
    for table, columns in SEARCHED.items():
        op.add_column(table, sa.Column('search_text', sa.Text(), server_default='', nullable=False))
        _backfill(bind, table, columns)
        if bind.dialect.name == "sqlite":
            op.execute(f"CREATE VIRTUAL TABLE {table}_fts USING fts5(search_text, {FTS5_OPTIONS.format(table=table)})")
            for trigger in FTS5_TRIGGERS:
                op.execute(trigger.format(table=table))
            op.execute(f"INSERT INTO {table}_fts({table}_fts) VALUES ('rebuild')")
        else:
            op.execute(PG_INDEX.format(table=table))


def _backfill(bind, table: str, columns: tuple[str, ...]) -> None:
    rows_of = sa.table(table, sa.column("id"), sa.column("search_text"), *(sa.column(c) for c in columns))
    last = 0
    while True:
        rows = bind.execute(sa.select(rows_of.c.id, *(rows_of.c[c] for c in columns))
                            .where(rows_of.c.id > last).order_by(rows_of.c.id).limit(BATCH_ROWS)).all()
        if not rows:
            return
        bind.execute(sa.update(rows_of).where(rows_of.c.id == sa.bindparam("row_id"))
                     .values(search_text=sa.bindparam("words")),
                     [{"row_id": row[0], "words": index_text(*row[1:])} for row in rows])
        last = rows[-1][0]


def downgrade():
    bind = op.get_bind()
    for table in SEARCHED:
        if bind.dialect.name == "sqlite":
            for trigger in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {table}_fts_{trigger}")
            op.execute(f"DROP TABLE {table}_fts")
        else:
            op.execute(f"DROP INDEX ix_{table}_search")
        # Not batch mode: rebuilding emails on SQLite would cascade the drop to every child row.
        op.execute(f"ALTER TABLE {table} DROP COLUMN search_text")
