"""Where a new tile goes (DESIGN.md, "New tiles get a place"): pure functions over the layouts of the
dashboard's live tiles.

`sm` is PostHog's 12-column grid: a new tile takes the first free w-by-h slot, scanning rows top to bottom and
x left to right. `xs` is the one-column phone layout: a new tile goes below everything else.
"""

import heapq
from collections.abc import Iterable, Mapping
from typing import Any

GRID_COLUMNS = 12
DEFAULT_W, DEFAULT_H = 6, 5
XS_H = 5

Box = tuple[int, int, int, int]  # x, y, w, h


def _number(value: Any) -> int | None:
    # Layouts are opaque JSON written by clients: anything that is not a finite number is no coordinate.
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    if value in (float("inf"), float("-inf")):
        return None
    return int(value)


def box_of(layouts: Any, size: str) -> Box | None:
    """The tile's box in layout `size`, or None when it has no usable position there. A box without a
    size counts as the default size, so that it is not overlapped."""
    box = layouts.get(size) if isinstance(layouts, Mapping) else None
    if not isinstance(box, Mapping):
        return None
    x, y = _number(box.get("x")), _number(box.get("y"))
    if x is None or y is None:
        return None
    w, h = _number(box.get("w")), _number(box.get("h"))
    return (x, y, w if w is not None and w > 0 else DEFAULT_W, h if h is not None and h > 0 else DEFAULT_H)


class Placer:
    """Places new tiles one after another on one dashboard: each placed tile occupies its slot for the
    next, so several tiles created by one request do not land on top of each other.

    The `sm` search sweeps a band of `h` rows down the grid. Only y = 0 or the bottom of some box can be
    the first free row (moved up by one, a free slot stays free unless a box ends just above it), so the
    band jumps from one such row to the next instead of visiting every row: boxes far down the grid cost
    nothing. For the band, a count per column of the boxes it meets gives its free columns, from which the
    leftmost free `w` columns follow in one pass over 12 columns. Occupying more never makes an earlier
    slot free, so the band never moves back up: placing N tiles among E existing ones costs
    O((N + E) log(N + E)), where rescanning every box for every candidate slot cost O(N·E³).
    """

    def __init__(self, existing_layouts: Iterable[Any], w: int = DEFAULT_W, h: int = DEFAULT_H) -> None:
        self._w, self._h = min(w, GRID_COLUMNS), h
        self._y = 0  # the band's top row: no free slot starts above it
        self._columns = [0] * GRID_COLUMNS  # boxes in the band, by column they cover
        self._leaving: list[tuple[int, int]] = []  # (bottom, columns) of the boxes in the band
        self._coming: list[tuple[int, int, int]] = []  # (band top it first meets, bottom, columns)
        self._rows: list[int] = []  # the bottoms below the band's top: the rows it may jump to
        self._xs_bottom = 0
        for layouts in existing_layouts:
            self._occupy(layouts)

    def place(self, layouts: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`layouts` completed with an `sm` and an `xs` box where it has none; the boxes it already has
        are kept as given. The result occupies its place for the next call."""
        placed = dict(layouts or {})
        if not isinstance(placed.get("sm"), Mapping):
            x, y = self._first_free_slot()
            placed["sm"] = {"x": x, "y": y, "w": self._w, "h": self._h}
        if not isinstance(placed.get("xs"), Mapping):
            placed["xs"] = {"x": 0, "y": self._xs_bottom, "w": 1, "h": XS_H}
        self._occupy(placed)
        return placed

    def _occupy(self, layouts: Any) -> None:
        if (sm := box_of(layouts, "sm")) is not None:
            self._add(sm)
        if (xs := box_of(layouts, "xs")) is not None:
            self._xs_bottom = max(self._xs_bottom, xs[1] + xs[3])

    def _add(self, box: Box) -> None:
        x, y, w, h = box
        left, right = max(x, 0), min(x + w, GRID_COLUMNS)
        bottom = y + h
        if left >= right or bottom <= self._y:
            return  # off the grid's columns, or above the band for good: it can cover no slot still to come
        columns = ((1 << (right - left)) - 1) << left
        first_band = y - self._h + 1  # the first band top whose rows reach the box
        if first_band <= self._y:
            self._enter(bottom, columns)
        else:
            heapq.heappush(self._coming, (first_band, bottom, columns))
        heapq.heappush(self._rows, bottom)

    def _enter(self, bottom: int, columns: int) -> None:
        heapq.heappush(self._leaving, (bottom, columns))
        self._count(columns, 1)

    def _count(self, columns: int, step: int) -> None:
        for column in range(GRID_COLUMNS):
            if columns >> column & 1:
                self._columns[column] += step

    def _move_band(self, top: int) -> None:
        self._y = top
        while self._coming and self._coming[0][0] <= top:
            _, bottom, columns = heapq.heappop(self._coming)
            if bottom > top:
                self._enter(bottom, columns)
        while self._leaving and self._leaving[0][0] <= top:
            _, columns = heapq.heappop(self._leaving)
            self._count(columns, -1)

    def _first_free_slot(self) -> tuple[int, int]:
        window = (1 << self._w) - 1
        while True:
            taken = sum(1 << c for c, n in enumerate(self._columns) if n)
            for x in range(GRID_COLUMNS - self._w + 1):
                if not taken >> x & window:
                    return x, self._y
            # Something in the band blocks every x; its bottom, below the band's top, is still in `_rows`.
            while self._rows[0] <= self._y:
                heapq.heappop(self._rows)
            self._move_band(heapq.heappop(self._rows))
