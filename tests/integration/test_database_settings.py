"""How the app talks to its database, whatever the page."""
from sqlalchemy import text

from models import db


def test_postgresql_sessions_run_with_jit_off(app):
    # The sharing rule's OR'd EXISTS make PostgreSQL's cost estimates huge, and past
    # jit_above_cost it compiled ordinary page queries: 291 ms of compiling for a 20 ms count.
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            return
        assert db.session.execute(text("SHOW jit")).scalar() == "off"
        db.session.commit()  # a fresh connection from the pool says the same
        with db.engine.connect() as connection:
            assert connection.execute(text("SHOW jit")).scalar() == "off"
