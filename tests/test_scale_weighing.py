"""The pure part of weighing (edge_agent/scales/weighing.py): what a return should weigh, the
tolerance, the check and the contract's `weight` object."""

from __future__ import annotations

import pytest

from drivers.scales.reading import Reading
from edge_agent.scales.weighing import Latest, expected_g, grams_of, judge, unknown_because, weight_field


def test_expected_weight_is_the_returns_own_else_its_items() -> None:
    items = [{"sku": "A", "qty": 2, "weight_g": 180}, {"sku": "B", "qty": 1, "weight_g": 400.5}]
    assert expected_g({"weight_g": 950, "items": items}) == 950.0  # the return's own wins
    assert expected_g({"items": items}) == 760.5
    assert expected_g({"items": [{"sku": "A", "weight_g": 180}]}) == 180.0  # qty defaults to 1
    # one item without a weight: a sum without it would call every such parcel heavy
    assert expected_g({"items": [*items, {"sku": "C", "qty": 1}]}) is None
    assert expected_g({"items": []}) is None and expected_g({}) is None
    assert expected_g({"weight_g": True, "items": items}) == 760.5  # a bool is not a weight
    assert expected_g({"items": [{"sku": "A", "qty": "2", "weight_g": 180}]}) is None


@pytest.mark.parametrize(
    ("grams", "expected", "check"),
    [
        (950, 950, "ok"),
        (808, 950, "ok"),  # 15 % of 950 = 142.5: 807.5 is the edge
        (807, 950, "light"),
        (1092, 950, "ok"),
        (1093, 950, "heavy"),
        (120, 950, "light"),  # an empty box
        (150, 100, "ok"),  # a light parcel: at least 50 g either way
        (150.5, 100, "heavy"),
        (None, 950, "unknown"),
        (950, None, "unknown"),
    ],
)
def test_check_against_the_tolerance(grams: float | None, expected: float | None, check: str) -> None:
    assert judge(grams, expected, 15.0, 50.0) == check


def test_weight_field_judges_only_a_stable_weight() -> None:
    assert weight_field("sc1", 120.0, True, 950.0, 15, 50) == {
        "grams": 120, "stable": True, "scale": "sc1", "expected_g": 950, "check": "light"}  # fmt: skip
    moving = weight_field("sc1", 127.5, False, 950.0, 15, 50, "no stable weight within 1500 ms")
    assert moving["check"] == "unknown" and moving["grams"] == 127.5
    assert moving["detail"] == "no stable weight within 1500 ms"
    assert grams_of(453.59237) == 453.6 and grams_of(1000.0) == 1000 and grams_of(None) is None


def test_a_reading_is_taken_only_with_a_parcel_on_the_pan() -> None:
    def latest(state: str, grams: float | None, stable: bool) -> Latest:
        return Latest("sc1", state, Reading(state, grams, stable), 0, 20.0)  # type: ignore[arg-type]

    assert latest("ok", 950, True).loaded()
    assert not latest("ok", 5, True).loaded()  # below min_load_g: the pan is empty
    assert not latest("motion", 950, False).loaded()
    assert not latest("overload", None, False).loaded()
    assert unknown_because(latest("ok", 5, True), 1500) == "nothing on the scale"
    assert unknown_because(latest("overload", None, False), 1500) == "the scale reports overload"
    assert unknown_because(latest("motion", 950, False), 1500) == "no stable weight within 1500 ms"
    assert unknown_because(None, 1500) == "the scale is offline"
