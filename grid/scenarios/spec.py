"""Scenario and sweep files: pydantic models of the YAML (or the API's JSON) and their loading.

A *scenario* is a baseline site plus an ordered list of edits, evaluated over one period or a set of
weighted representative windows. A *sweep* is a scenario template whose edits contain placeholders
``${name}``, filled from a cross product of parameter values (``parameters``) and/or a list of
explicit cases (``cases``).

Units follow :mod:`grid.domain`: kW, kWh, kWp, kVA, EUR/kWh, hours; fractions are 0..1; times are
ISO 8601 with a UTC offset. Validation errors name the edit and the field, e.g.
``edits[2].scale: must be > 0, got -1``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grid.domain import GridFeeWindow, format_loc, pydantic_errors, read_yaml_mapping
from grid.errors import InputError, InputErrors

#: the name of the unedited site in every comparison
BASELINE = "baseline"

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
DeviceKind = Literal["battery", "ev_charger", "heat_pump"]
DEVICE_KINDS: tuple[DeviceKind, ...] = ("battery", "ev_charger", "heat_pump")
NAME_PATTERN = r"^[A-Za-z0-9_.=,+-]+$"
#: the longest evaluation period or window, hours (a leap year), and the shortest (15 minutes)
MAX_HOURS, MIN_HOURS = 8784.0, 0.25
#: random seeds are non-negative 32-bit integers (numpy refuses negative ones; JSON tools lose larger integers)
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
Hours = Annotated[float, Field(ge=MIN_HOURS, le=MAX_HOURS)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must include a UTC offset, e.g. 2026-01-14T00:00:00+01:00")
    return value


# --- distributions --------------------------------------------------------------------------------


class ClippedNormal(_Model):
    """A normal distribution clipped to [min, max] (hours of the local day, or kWh)."""

    mean: float
    sd: NonNegFloat
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> ClippedNormal:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


# --- edits: one model per kind --------------------------------------------------------------------


class AddEVs(_Model):
    """Add ``count`` 11 kW wallboxes to households that have none, with evening plug-in sessions.

    Households are drawn with ``seed`` (restricted to ``connection`` if given; businesses excluded).
    Per new wallbox and local evening inside the inputs, a car plugs in with probability
    ``plug_in_share``: arrival hour ~ ``arrival_h``, departure next morning ~ ``departure_h`` (local
    hours, clipped normals), energy needed ~ lognormal(``energy_kwh.mean``, ``energy_kwh.sd``)
    clipped to [min, max] kWh and to 80 % of what the wallbox can deliver while plugged in.
    """

    kind: Literal["add_evs"]
    count: Annotated[int, Field(ge=0, le=100_000)]
    connection: str | None = None
    max_kw: PositiveFloat = 11.0
    flex_contract_share: Fraction = 0.5
    plug_in_share: Fraction = 0.55
    arrival_h: ClippedNormal = ClippedNormal(mean=18.0, sd=0.8, min=16.25, max=21.0)
    departure_h: ClippedNormal = ClippedNormal(mean=7.25, sd=0.6, min=5.5, max=9.0)
    energy_kwh: ClippedNormal = ClippedNormal(mean=22.0, sd=7.0, min=4.0, max=35.0)
    seed: Seed = 0


class AddBattery(_Model):
    """Add one battery (e.g. a community battery) at ``connection``; ``id`` defaults to
    ``e<edit index>-BAT``; ``charge_kw`` defaults to half the capacity per hour, ``discharge_kw``
    to ``charge_kw``. The terminal SoC target defaults to the initial SoC."""

    kind: Literal["add_battery"]
    id: str | None = None
    connection: str
    feeder: str | None = None
    household: str | None = None
    capacity_kwh: NonNegFloat
    charge_kw: NonNegFloat | None = None
    discharge_kw: NonNegFloat | None = None
    charge_efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    discharge_efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    initial_soc: Fraction = 0.5
    terminal_soc: Fraction | None = None
    flex_contract: bool = True


class ResizeBattery(_Model):
    """Change an existing battery: multiply capacity and both power ratings by ``scale`` and/or set
    any of ``capacity_kwh``, ``charge_kw``, ``discharge_kw`` (set values win over the scale)."""

    kind: Literal["resize_battery"]
    id: str
    scale: PositiveFloat | None = None
    capacity_kwh: NonNegFloat | None = None
    charge_kw: NonNegFloat | None = None
    discharge_kw: NonNegFloat | None = None

    @model_validator(mode="after")
    def _something(self) -> ResizeBattery:
        if self.scale is None and self.capacity_kwh is None and self.charge_kw is None and self.discharge_kw is None:
            raise ValueError("give scale or at least one of capacity_kwh, charge_kw, discharge_kw")
        return self


class ScalePV(_Model):
    """Multiply the kWp of every PV array (or of those at ``connection``) by ``scale``."""

    kind: Literal["scale_pv"]
    scale: PositiveFloat
    connection: str | None = None


class AddPV(_Model):
    """Add one PV array. Its availability (kW/kWp) is copied from ``profile_from`` (an existing
    array id) or else is the kWp-weighted mean of the existing arrays with the same tilt and
    azimuth, else of all arrays; a site without PV gets a pvlib clear-sky profile (Ineichen) at
    its location x a system factor of 0.86 (no clouds: an upper bound)."""

    kind: Literal["add_pv"]
    id: str | None = None
    connection: str
    feeder: str | None = None
    household: str | None = None
    kwp: PositiveFloat
    tilt_deg: Annotated[float, Field(ge=0.0, le=90.0)] = 30.0
    azimuth_deg: Annotated[float, Field(ge=0.0, lt=360.0)] = 180.0
    curtailable: bool = True
    profile_from: str | None = None


class SetTransformer(_Model):
    """Replace a transformer's rating or limits (kVA, kW); unset fields keep their value.
    Setting ``rated_kva`` alone also resets explicit kW limits to rated_kva x power_factor."""

    kind: Literal["set_transformer"]
    connection: str
    rated_kva: NonNegFloat | None = None
    power_factor: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    import_limit_kw: NonNegFloat | None = None
    export_limit_kw: NonNegFloat | None = None
    hard_limits: bool | None = None


class SetTariff(_Model):
    """Change tariff fields (EUR/kWh, EUR/kW, EUR/t); unset fields keep their value. A constant
    ``import_price_eur_per_kwh`` replaces the price series of the inputs (a flat tariff)."""

    kind: Literal["set_tariff"]
    import_price_eur_per_kwh: NonNegFloat | None = None
    feed_in_price_eur_per_kwh: float | Literal["spot"] | None = None
    grid_fee_eur_per_kwh: NonNegFloat | None = None
    grid_fee_windows: list[GridFeeWindow] | None = None
    peak_charge_eur_per_kw: NonNegFloat | None = None
    co2_price_eur_per_t: NonNegFloat | None = None
    co2_g_per_kwh: NonNegFloat | None = None


class SetPrices(_Model):
    """Change the energy price (EUR/kWh) seen by every household.

    ``constant_eur_per_kwh``: a flat tariff (drops the price series); ``file``: a dynamic tariff
    from a CSV with ``timestamp,price_eur_per_kwh`` (path relative to the scenario file); ``scale``
    and ``offset_eur_per_kwh``: new = old x scale + offset on the series (or the constant).
    """

    kind: Literal["set_prices"]
    constant_eur_per_kwh: NonNegFloat | None = None
    file: str | None = None
    scale: NonNegFloat = 1.0
    offset_eur_per_kwh: float = 0.0

    @model_validator(mode="after")
    def _one_source(self) -> SetPrices:
        if self.constant_eur_per_kwh is not None and self.file is not None:
            raise ValueError("give constant_eur_per_kwh or file, not both")
        return self


class HeatPumpRollout(_Model):
    """Give a heat pump to ``share`` of the households without one (businesses excluded; only at
    ``connection`` if given), drawn with ``seed``. Sizing as in :mod:`grid.demo`: annual heat
    uniform in ``annual_heat_kwh`` (rounded to 100 kWh), electric kW = heat / 2,200 full-load hours
    clipped to 3..9 kW, store 10..30 kWh growing with the heat, COP 3.2 + 0.08/K x T_out. Heat
    demand series from :func:`grid.demo.heat_demand_kw` (heating degrees of the site's weather,
    daily shapes), so they follow the site's temperature."""

    kind: Literal["heat_pump_rollout"]
    share: Annotated[float, Field(gt=0.0, le=1.0)]
    connection: str | None = None
    annual_heat_kwh: tuple[PositiveFloat, PositiveFloat] = (8000.0, 20000.0)
    flex_contract_share: Fraction = 0.5
    seed: Seed = 0


class SetPar14a(_Model):
    """Change §14a settings (kW, fractions); unset fields keep their value."""

    kind: Literal["set_par14a"]
    min_kw: PositiveFloat | None = None
    threshold_kw: NonNegFloat | None = None
    large_hp_kw: PositiveFloat | None = None
    large_hp_factor: Fraction | None = None
    gzf: list[Fraction] | None = None


class SetFlexContract(_Model):
    """Set ``flex_contract`` of the devices of ``devices`` kinds (default all), restricted to
    ``ids`` and/or ``connection`` if given."""

    kind: Literal["set_flex_contract"]
    value: bool
    devices: list[DeviceKind] = Field(default_factory=lambda: list(DEVICE_KINDS))
    ids: list[str] | None = None
    connection: str | None = None


Edit = Annotated[
    AddEVs
    | AddBattery
    | ResizeBattery
    | ScalePV
    | AddPV
    | SetTransformer
    | SetTariff
    | SetPrices
    | HeatPumpRollout
    | SetPar14a
    | SetFlexContract,
    Field(discriminator="kind"),
]
EDIT_KINDS = (
    "add_evs",
    "add_battery",
    "resize_battery",
    "scale_pv",
    "add_pv",
    "set_transformer",
    "set_tariff",
    "set_prices",
    "heat_pump_rollout",
    "set_par14a",
    "set_flex_contract",
)


# --- evaluation period ----------------------------------------------------------------------------


class Period(_Model):
    """One evaluation period: ``start`` (default: first input interval) and ``hours`` (default: all
    inputs from ``start``)."""

    start: dt.datetime | None = None
    hours: Hours | None = None

    @field_validator("start")
    @classmethod
    def _aware_start(cls, value: dt.datetime | None) -> dt.datetime | None:
        return _aware(value)


class Window(_Model):
    """A representative window: ``weight`` is how many times it counts (e.g. 30 for a day that
    stands for a month); weighted sums of the windows' KPIs give the aggregate."""

    start: dt.datetime
    hours: Hours
    weight: Annotated[float, Field(gt=0.0, le=10_000.0)] = 1.0

    @field_validator("start")
    @classmethod
    def _aware_start(cls, value: dt.datetime) -> dt.datetime:
        _aware(value)
        return value


class SolverSettings(_Model):
    """HiGHS settings per solve: 1 thread suits parallel sweeps; ``time_limit_s`` in seconds."""

    threads: Annotated[int, Field(ge=1)] = 1
    time_limit_s: PositiveFloat | None = None


#: JSON Schema of ``_Windows._one_period``: not both ``period`` and ``representative_days`` (null = not given)
_ONE_PERIOD: dict[str, Any] = {
    "not": {
        "required": ["period", "representative_days"],
        "properties": {"period": {"type": "object"}, "representative_days": {"type": "array"}},
    }
}


class _Windows(_Model):
    """A name and the evaluation period: what a scenario sent over the API has besides its edits."""

    model_config = ConfigDict(json_schema_extra=_ONE_PERIOD)

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]
    description: Annotated[str, Field(max_length=10_000)] = ""
    period: Period | None = None
    representative_days: Annotated[list[Window], Field(min_length=1, max_length=366)] | None = None

    @model_validator(mode="after")
    def _one_period(self) -> Self:
        if self.period is not None and self.representative_days is not None:
            raise ValueError("give period or representative_days, not both")
        return self


class _Evaluated(_Windows):
    """What scenarios and sweeps share: the baseline and how to evaluate it."""

    baseline: Path
    solver: SolverSettings = Field(default_factory=SolverSettings)
    base_dir: Path = Field(default=Path("."), exclude=True)

    @property
    def baseline_path(self) -> Path:
        """The baseline site YAML (relative paths are relative to the scenario file)."""
        return self.baseline if self.baseline.is_absolute() else self.base_dir / self.baseline


class ScenarioSpec(_Evaluated):
    """A baseline plus edits (applied in order)."""

    edits: list[Edit] = Field(default_factory=list)


class ScenarioBody(_Windows):
    """A scenario as the API takes it: the YAML's fields without ``baseline`` (the site of the
    URL) and ``solver`` (the service's settings)."""

    edits: list[Edit] = Field(default_factory=list)

    def to_spec(self, baseline: Path, solver: SolverSettings) -> ScenarioSpec:
        """The full scenario on `baseline` (relative files in edits resolve next to it)."""
        raw = self.model_dump(exclude_unset=True)
        return ScenarioSpec.model_validate({**raw, "baseline": baseline, "solver": solver, "base_dir": baseline.parent})


class SweepSpec(_Evaluated):
    """Edit templates with ``${name}`` placeholders and the parameter values to fill in.

    ``parameters`` give the cross product (in the order written, the last varying fastest);
    ``cases`` add explicit combinations. A placeholder that is the whole string takes the value's
    type (``capacity_kwh: "${battery_kwh}"`` becomes a number).
    """

    edits: list[dict[str, Any]] = Field(default_factory=list)
    parameters: dict[str, list[Any]] = Field(default_factory=dict)
    cases: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _parameters_used(self) -> SweepSpec:
        if not self.parameters and not self.cases:
            raise ValueError("give parameters (a cross product) or cases (a list), or both")
        for key, values in self.parameters.items():
            if not values:
                raise ValueError(f"parameters.{key} must list at least one value")
        used = set(placeholders(self.edits))
        names = set(self.parameters) | {k for case in self.cases for k in case}
        if used - names:
            raise ValueError(f"placeholder(s) without a value: {', '.join(sorted(used - names))}")
        if names - used:
            raise ValueError(f"parameter(s) used by no edit: {', '.join(sorted(names - used))}")
        return self


# --- placeholders ---------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders(obj: Any) -> list[str]:
    """Names of every ``${name}`` inside `obj` (nested dicts, lists, strings)."""
    if isinstance(obj, str):
        return _PLACEHOLDER.findall(obj)
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in placeholders(v)]
    if isinstance(obj, list):
        return [n for v in obj for n in placeholders(v)]
    return []


def fill(obj: Any, values: dict[str, Any]) -> Any:
    """`obj` with every placeholder replaced; a string that is one placeholder takes the value."""
    if isinstance(obj, str):
        whole = _PLACEHOLDER.fullmatch(obj)
        if whole:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), obj)
    if isinstance(obj, dict):
        return {k: fill(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [fill(v, values) for v in obj]
    return obj


# --- loading --------------------------------------------------------------------------------------


def spec_errors(exc: ValidationError) -> list[InputError]:
    """Pydantic errors with paths such as ``edits[2].scale`` (the union's tag left out)."""
    out = []
    for err, problem in zip(exc.errors(), pydantic_errors(exc), strict=True):
        loc = tuple(
            p
            for i, p in enumerate(err["loc"])
            if not (p in EDIT_KINDS and i > 0 and isinstance(err["loc"][i - 1], int))
        )
        problem.where = format_loc(loc)
        out.append(problem)
    return out


def scenario_from_dict(raw: dict[str, Any], base_dir: Path | None = None, context: str = "scenario") -> ScenarioSpec:
    """Validate a scenario given as plain data; raise :class:`InputErrors` naming every bad field."""
    try:
        return ScenarioSpec.model_validate({**raw, "base_dir": base_dir or Path(".")})
    except ValidationError as exc:
        raise InputErrors(spec_errors(exc), context) from None


def sweep_from_dict(raw: dict[str, Any], base_dir: Path | None = None, context: str = "sweep") -> SweepSpec:
    """Validate a sweep given as plain data; raise :class:`InputErrors` naming every bad field."""
    try:
        return SweepSpec.model_validate({**raw, "base_dir": base_dir or Path(".")})
    except ValidationError as exc:
        raise InputErrors(spec_errors(exc), context) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from `path`; timestamps stay strings so that an offset-less one is refused."""
    return read_yaml_mapping(path, "file", "name, baseline, edits, ...")


def load_scenario(path: str | Path) -> ScenarioSpec:
    """Read and validate a scenario YAML (relative paths inside are relative to it)."""
    return scenario_from_dict(read_yaml(path), base_dir=Path(path).parent, context=str(path))


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML (relative paths inside are relative to it)."""
    return sweep_from_dict(read_yaml(path), base_dir=Path(path).parent, context=str(path))
