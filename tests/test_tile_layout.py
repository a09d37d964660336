"""The placement of new tiles (`app.dashboards.layout`), next to a plain cell-by-cell scan of the grid: the
same slots for any existing layouts, in time proportional to the tiles placed and those already there.

(The HTTP behaviour of placement is in test_tile_edits.py and test_tile_caps.py; this pins the algorithm
against a reference too slow to use.)
"""

import itertools
import random
import time
from typing import Any

from app.dashboards.layout import DEFAULT_H, DEFAULT_W, GRID_COLUMNS, Placer, box_of

Box = tuple[int, int, int, int]


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


class ReferencePlacer:
    """What a new tile gets, by definition: the first w-by-h box, rows top to bottom then x left to right,
    that overlaps no box of the `sm` layout; and the bottom of the `xs` layout."""

    def __init__(self, existing: list[Any]) -> None:
        self.sm: list[Box] = []
        self.xs: list[Box] = []
        for layouts in existing:
            self._occupy(layouts)

    def _occupy(self, layouts: Any) -> None:
        if (sm := box_of(layouts, "sm")) is not None:
            self.sm.append(sm)
        if (xs := box_of(layouts, "xs")) is not None:
            self.xs.append(xs)

    def place(self, layouts: dict[str, Any] | None = None) -> dict[str, Any]:
        placed = dict(layouts or {})
        if not isinstance(placed.get("sm"), dict):
            free = (
                {"x": x, "y": y, "w": DEFAULT_W, "h": DEFAULT_H}
                for y in itertools.count()
                for x in range(GRID_COLUMNS - DEFAULT_W + 1)
                if not any(_overlaps((x, y, DEFAULT_W, DEFAULT_H), b) for b in self.sm)
            )
            placed["sm"] = next(free)
        if not isinstance(placed.get("xs"), dict):
            bottom = max([0, *(b[1] + b[3] for b in self.xs)])  # never above the first row
            placed["xs"] = {"x": 0, "y": bottom, "w": 1, "h": 5}
        self._occupy(placed)
        return placed


def random_layouts(rng: random.Random) -> Any:
    """Layouts as clients write them: mostly sane boxes, some partial, off the grid or nonsense."""
    kind = rng.random()
    if kind < 0.05:
        return rng.choice([{}, None, [], {"sm": "left"}, {"sm": {"x": "a", "y": 1}}, {"xs": {"x": 0}}])
    sm: dict[str, Any] = {"x": rng.randint(-3, 13), "y": rng.randint(-2, 40)}
    if rng.random() < 0.9:
        sm["w"] = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 12, 20, -1])
    if rng.random() < 0.9:
        sm["h"] = rng.choice([0, 1, 2, 3, 5, 8, -2])
    if rng.random() < 0.05:
        sm["y"] = float(sm["y"]) + 0.5
    layouts: dict[str, Any] = {"sm": sm}
    if rng.random() < 0.7:
        layouts["xs"] = {"x": 0, "y": rng.randint(-8, 60), "w": 1, "h": rng.choice([1, 5])}
    return layouts


def test_placement_matches_a_cell_by_cell_scan() -> None:
    rng = random.Random(20261202)
    for _ in range(300):
        existing = [random_layouts(rng) for _ in range(rng.randint(0, 25))]
        placer, reference = Placer(existing), ReferencePlacer(existing)
        for _ in range(rng.randint(1, 25)):
            # Now and then the new tile brings a box of its own, which later ones go around.
            given = random_layouts(rng) if rng.random() < 0.15 else None
            if given is not None and not isinstance(given, dict):
                given = None
            assert placer.place(given) == reference.place(given), existing


def test_a_box_far_down_the_grid_is_no_cost() -> None:
    # One tall box at the top left and one at a huge y: the free rows between are not visited one by one.
    placer = Placer([{"sm": {"x": 0, "y": 0, "w": 12, "h": 10**12}}, {"sm": {"x": 6, "y": 10**15}}])
    assert placer.place()["sm"] == {"x": 0, "y": 10**12, "w": 6, "h": 5}
    assert placer.place()["sm"] == {"x": 6, "y": 10**12, "w": 6, "h": 5}


def test_placing_thousands_of_tiles_takes_linear_time() -> None:
    rng = random.Random(7)
    existing = [random_layouts(rng) for _ in range(1000)]
    started = time.perf_counter()
    placer = Placer(existing)
    placed = [placer.place() for _ in range(5000)]
    took = time.perf_counter() - started
    # A rescan of every box for every candidate slot took 23 s for 1,000 tiles on an empty grid.
    assert took < 2, took
    boxes = [box_of(p, "sm") for p in placed]
    assert len(set(boxes)) == 5000
