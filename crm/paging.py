"""One page of a query's results, and LIKE patterns that match what the user typed literally."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select

from models import db


@dataclass
class Page:
    items: list[Any]
    page: int
    pages: int
    total: int

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def paginate(query: Select, page: int, size: int) -> Page:
    """The `page`-th page (clamped to the pages there are) of an ordered query."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    items = db.session.scalars(query.limit(size).offset((page - 1) * size)).all()
    return Page(list(items), page, pages, total)


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escape character backslash) for `text` anywhere: % and _ match themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
