"""Pages of lists: ``?page=1&size=50`` in, :class:`Page` ``{items, total, page, size}`` out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_SIZE = 200
DEFAULT_SIZE = 50


@dataclass(frozen=True, slots=True)
class PageParams:
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def limit(self) -> int:
        return self.size


def page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1")] = 1,
    size: Annotated[
        int, Query(ge=1, le=MAX_SIZE, description=f"Items per page, 1 to {MAX_SIZE}")
    ] = DEFAULT_SIZE,
) -> PageParams:
    return PageParams(page, size)


PageDep = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    """A page of a list: ``total`` is how many items the whole list holds."""

    items: list[T]
    total: int
    page: int
    size: int

    @classmethod
    def of(cls, items: list[T], total: int, params: PageParams) -> Page[T]:
        return cls(items=items, total=total, page=params.page, size=params.size)
