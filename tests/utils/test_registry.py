"""The one name-table mechanism: lazy entries, decorator registration, one-line errors."""

from __future__ import annotations

import sys

import pytest

from bootsep.utils.errors import UserError
from bootsep.utils.registry import Registry, UnknownNameError


def test_entries_are_objects_or_paths_imported_on_first_use():
    reg = Registry("thing", {"Fraction": "fractions.Fraction"})
    sys.modules.pop("fractions", None)
    assert "Fraction" in reg and sorted(reg) == ["Fraction"] and len(reg) == 1
    assert "fractions" not in sys.modules  # membership and listing import nothing
    assert reg.path("Fraction") == "fractions.Fraction"
    import fractions

    assert reg["Fraction"] is fractions.Fraction

    @reg.register
    def helper():
        pass

    @reg.register(name="short")
    class Long:
        pass

    assert reg["helper"] is helper and reg["short"] is Long
    assert reg.path("short").endswith(".Long")
    with pytest.raises(KeyError):
        reg["nope"]


def test_unknown_name_is_one_error_listing_the_known_names():
    reg = Registry("widget", {"b": "fractions.Fraction", "a": "decimal.Decimal"})
    with pytest.raises(UnknownNameError) as err:
        reg.lookup("c", where="cfg.key: ")
    assert str(err.value) == "cfg.key: unknown widget 'c'; known: ['a', 'b']"
    assert isinstance(err.value, UserError) and isinstance(err.value, ValueError)

    class Custom(ValueError):
        pass

    with pytest.raises(Custom, match="unknown widget 'c'"):
        Registry("widget", error=Custom).lookup("c")


def test_a_name_cannot_be_rebound_to_another_target():
    reg = Registry("thing", {"F": "fractions.Fraction"})
    reg.add("F", "fractions.Fraction")  # the same target again: fine
    import fractions

    reg.add("F", fractions.Fraction)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("F", "decimal.Decimal")
    with pytest.raises(ValueError, match="not a dotted path"):
        reg.add("G", "Decimal")
