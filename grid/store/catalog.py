"""What an OBIS code means for the store: measure, canonical unit and direction.

Direction is the sign a value gets in site aggregates (positive = drawn from the grid): an import
register counts +1, an export register -1 (see the sign convention in :mod:`grid.domain`).
"""

from __future__ import annotations

from dataclasses import dataclass

from grid.store.schema import Measure

IMPORT_REGISTER = "1-0:1.8.0"
EXPORT_REGISTER = "1-0:2.8.0"
IMPORT_POWER = "1-0:1.7.0"
EXPORT_POWER = "1-0:2.7.0"
NET_POWER = "1-0:16.7.0"
IMPORT_INTERVAL = "1-0:1.29.0"
EXPORT_INTERVAL = "1-0:2.29.0"


@dataclass(frozen=True)
class ObisInfo:
    """Meaning of one OBIS code: `measure`, canonical `unit`, `direction` (+1 import, -1 export)."""

    measure: Measure
    unit: str
    direction: int
    allow_negative: bool = False
    label: str = ""


OBIS: dict[str, ObisInfo] = {
    IMPORT_REGISTER: ObisInfo(Measure.REGISTER, "kWh", 1, label="energy imported, cumulative"),
    EXPORT_REGISTER: ObisInfo(Measure.REGISTER, "kWh", -1, label="energy exported, cumulative"),
    IMPORT_INTERVAL: ObisInfo(Measure.ENERGY, "kWh", 1, label="energy imported per interval"),
    EXPORT_INTERVAL: ObisInfo(Measure.ENERGY, "kWh", -1, label="energy exported per interval"),
    IMPORT_POWER: ObisInfo(Measure.POWER, "kW", 1, label="power imported"),
    EXPORT_POWER: ObisInfo(Measure.POWER, "kW", -1, label="power exported"),
    NET_POWER: ObisInfo(Measure.POWER, "kW", 1, allow_negative=True, label="net active power"),
}

#: Canonical unit per measure.
UNITS: dict[Measure, str] = {
    Measure.REGISTER: "kWh",
    Measure.ENERGY: "kWh",
    Measure.POWER: "kW",
    Measure.TEMPERATURE: "degC",
    Measure.IRRADIANCE: "W/m2",
}

#: Accepted spellings of input units (matched case-insensitively) -> (canonical unit, factor).
CONVERSIONS: dict[str, tuple[str, float]] = {
    "kwh": ("kWh", 1.0),
    "wh": ("kWh", 1e-3),
    "mwh": ("kWh", 1e3),
    "kw": ("kW", 1.0),
    "w": ("kW", 1e-3),
    "mw": ("kW", 1e3),
    "degc": ("degC", 1.0),
    "°c": ("degC", 1.0),
    "w/m2": ("W/m2", 1.0),
    "w/m²": ("W/m2", 1.0),
}


def unit_factor(unit: str, canonical: str) -> float | None:
    """Factor that converts a value in `unit` to `canonical`, or None if they do not convert."""
    hit = CONVERSIONS.get(unit.strip().lower())
    if hit is None or hit[0] != canonical:
        return None
    return hit[1]


def convertible_units(canonical: str) -> list[str]:
    """Input units accepted for a sensor whose unit is `canonical`."""
    spelled = {"kWh": ["kWh", "Wh", "MWh"], "kW": ["kW", "W", "MW"]}
    return spelled.get(canonical, [canonical])
