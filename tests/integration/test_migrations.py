"""The schema comes only from migrations/, and they match the models, on each database."""
import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Index, text

from models import db

# Full-text search's indexes are outside the models' metadata, made by the migration hfts1 for
# one database each: SQLite's FTS5 tables (<table>_fts and the shadow tables FTS5 keeps beside
# it, <table>_fts_data, _idx, _config) and PostgreSQL's GIN indexes over an expression. The
# search tests (tests/integration/test_search.py) prove they exist and are kept in step.
FULL_TEXT = ("emails_fts", "records_fts")
FULL_TEXT_INDEXES = ("ix_emails_search", "ix_records_search")


def compared(name, type_, parent_names) -> bool:
    if type_ == "table":
        return not name.startswith(FULL_TEXT)
    return not (type_ == "index" and name in FULL_TEXT_INDEXES)


def _expression_indexes() -> dict[str, Index]:
    return {index.name: index for table in db.metadata.tables.values() for index in table.indexes
            if any(not hasattr(expression, "name") for expression in index.expressions)}


def test_migrations_match_the_models(app):
    with db.engine.connect() as connection, warnings.catch_warnings():
        # SQLAlchemy cannot reflect an index on expressions (lower(last_name)) from SQLite: it
        # warns and leaves it out. Those are checked by name and definition below instead.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": compared})
        diff = compare_metadata(context, db.metadata)
        unseen = _expression_indexes() if connection.dialect.name == "sqlite" else {}
        diff = [d for d in diff if not (d[0] == "add_index" and d[1].name in unseen)]
        for name, index in unseen.items():
            sql = connection.execute(text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"),
                                     {"n": name}).scalar()
            assert sql is not None, name
            assert sql.replace('"', "").lower().endswith(
                f"on {index.table.name} ({', '.join(str(e) for e in index.expressions)})".lower()), sql
    assert diff == []


def test_database_is_at_the_latest_migration(app):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    script = ScriptDirectory.from_config(config)
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    assert current == script.get_current_head()

