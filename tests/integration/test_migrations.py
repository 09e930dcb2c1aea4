"""The schema comes only from migrations/, and they match the models, on each database."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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


def test_migrations_match_the_models(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "include_name": compared})
        diff = compare_metadata(context, db.metadata)
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

