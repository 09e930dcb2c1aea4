"""Generic query helpers that belong to no domain: one page of a query's results, full-text search
conditions, bulk inserts, and IN lists in chunks."""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, column, false, func, insert, literal_column, select, table
from sqlalchemy.dialects.postgresql import TSQUERY

from fulltext import Search
from models import db

IN_CHUNK = 500  # ids per IN (...) list: far below every database's limit on bound parameters


@dataclass
class Page:
    """One page of a query's results. There is no total: counting every row would cost as much as
    the table is big; "Next" comes from fetching one row more than the page."""

    items: list[Any]
    page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def paginate(query: Select, page: int, size: int) -> Page:
    """The `page`-th page of an ordered query: `size` rows, and whether more follow. A page past
    the end is empty (the templates say so, with a way back)."""
    page = max(1, page)
    rows = db.session.scalars(query.limit(size + 1).offset((page - 1) * size)).all()
    return Page(list(rows[:size]), page, len(rows) > size)


def full_text_match(q: str, table_name: str, id_column, words_column) -> ColumnElement[bool]:
    """A condition: the row (`id_column`, its `words_column` = search_text) of `table_name` holds
    every word of the search `q` (fulltext.Search). A search without a single word matches nothing.

    PostgreSQL through the GIN index ix_<table>_search (this very expression), SQLite through the
    FTS5 table <table>_fts (migration hfts1)."""
    search = Search.parse(q)
    if not search.words:
        return false()
    if db.session.get_bind().dialect.name == "postgresql":
        vector = func.array_to_tsvector(func.string_to_array(words_column, literal_column("' '")))
        return vector.op("@@")(bindparam(None, search.tsquery(), type_=TSQUERY))
    fts = table(f"{table_name}_fts", column("rowid"))  # MATCH on the table's name: all its columns
    return id_column.in_(select(fts.c.rowid).where(literal_column(fts.name).op("MATCH")(search.fts5())))


def insert_many(model, rows: list[dict]) -> list[int]:
    """Insert rows of a model with an integer id in one round trip; their ids, in order.
    Raises SQLAlchemyError."""
    if not rows:
        return []
    if db.session.get_bind().dialect.name == "postgresql":
        # Ids drawn first, then a pipelined executemany: INSERT ... RETURNING of many rows is one
        # huge statement that psycopg re-parses in Python every time (it took half the poll).
        new_ids = list(db.session.scalars(
            select(func.nextval(func.pg_get_serial_sequence(model.__tablename__, "id")))
            .select_from(func.generate_series(1, len(rows)))))
        db.session.execute(insert(model), [{**row, "id": row_id} for row, row_id in zip(rows, new_ids)])
        return new_ids
    result = db.session.execute(insert(model).returning(model.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def chunks(items: list, size: int = IN_CHUNK) -> Iterator[list]:
    """`items` in lists of at most `size`, for IN (...) conditions."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
