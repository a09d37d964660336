"""Where a new tile goes (DESIGN.md, "New tiles get a place"): pure functions over the layouts of the
dashboard's live tiles.

`sm` is PostHog's 12-column grid: a new tile takes the first free w-by-h slot, scanning rows top to bottom and
x left to right. `xs` is the one-column phone layout: a new tile goes below everything else.
"""

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


def _overlaps(a: Box, b: Box) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def first_free_slot(taken: Iterable[Box], w: int = DEFAULT_W, h: int = DEFAULT_H) -> tuple[int, int]:
    """(x, y) of the first w-by-h slot of the grid that overlaps no taken box, in (y, x) order.

    Only y = 0 or the bottom of some box, and x = 0 or the right edge of some box, can be the first free
    position (moved up or left by one, a free slot stays free unless it touches such an edge), so those
    candidates give the same answer as a cell-by-cell scan, in a time that does not depend on the grid's
    height. The row below every box is always free, so a slot is always found.
    """
    boxes = list(taken)
    w = min(w, GRID_COLUMNS)
    ys = sorted({0} | {by + bh for _, by, _, bh in boxes if by + bh > 0})
    xs = sorted({0} | {bx + bw for bx, _, bw, _ in boxes if 0 < bx + bw <= GRID_COLUMNS - w})
    for y in ys:
        for x in xs:
            candidate = (x, y, w, h)
            if not any(_overlaps(candidate, box) for box in boxes):
                return x, y
    raise AssertionError("unreachable: the row below every box is free")  # pragma: no cover


def xs_bottom(taken: Iterable[Box]) -> int:
    return max((y + h for _, y, _, h in taken), default=0)


class Placer:
    """Places new tiles one after another on one dashboard: each placed tile occupies its slot for the
    next, so several tiles created by one request do not land on top of each other."""

    def __init__(self, existing_layouts: Iterable[Any]) -> None:
        self._sm: list[Box] = []
        self._xs: list[Box] = []
        for layouts in existing_layouts:
            self._occupy(layouts)

    def _occupy(self, layouts: Any) -> None:
        if (sm := box_of(layouts, "sm")) is not None:
            self._sm.append(sm)
        if (xs := box_of(layouts, "xs")) is not None:
            self._xs.append(xs)

    def place(self, layouts: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`layouts` completed with an `sm` and an `xs` box where it has none; the boxes it already has
        are kept as given. The result occupies its place for the next call."""
        placed = dict(layouts or {})
        if not isinstance(placed.get("sm"), Mapping):
            x, y = first_free_slot(self._sm)
            placed["sm"] = {"x": x, "y": y, "w": DEFAULT_W, "h": DEFAULT_H}
        if not isinstance(placed.get("xs"), Mapping):
            placed["xs"] = {"x": 0, "y": xs_bottom(self._xs), "w": 1, "h": XS_H}
        self._occupy(placed)
        return placed
