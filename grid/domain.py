"""The neighbourhood as data: site, connection points, households and flexible assets.

Sign convention (everywhere in this package, the LP, the plan JSON and the API):
    power_kw > 0  means drawn from the grid node (consumption, charging);
    power_kw < 0  means fed into the node (generation, discharging).
Grid exchange at a connection point is reported as two non-negative numbers, import_kw and
export_kw, so that per interval ``import_kw - export_kw == sum(power_kw of the assets behind it)``.

Units: kW, kWh, EUR/kWh, EUR/kW, g CO2/kWh, degC; fractions are 0..1. Times are tz-aware; a value
stamped t covers [t, t + resolution).

A site is described in YAML and validated here; cross-references (which connection, which charger)
are checked by :func:`check_references`, which reports every problem with its YAML path.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grid.errors import InputError, InputErrors

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
Profile = Literal["H25", "P25", "S25", "G25", "H0"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


# --- regulatory and economic settings -------------------------------------------------------------


class Par14aSettings(_Model):
    """§14a EnWG dimming rules (BNetzA BK6-22-300, Anlage 1). All numbers are presumptions of the
    ruling and therefore settings, not literals.

    min_kw:            guaranteed minimum grid draw of a dimmed device (4.2 kW).
    threshold_kw:      devices rated at or below this are not controllable devices under §14a.
    large_hp_kw:       heat pumps / AC above this rating get ``large_hp_factor`` x rating instead.
    gzf:               simultaneity factors GZF(n) for n = 2, 3, ... behind one EMS; the last value
                       applies to every larger n (0.45 for n >= 9).
    """

    min_kw: PositiveFloat = 4.2
    threshold_kw: NonNegFloat = 4.2
    large_hp_kw: PositiveFloat = 11.0
    large_hp_factor: Fraction = 0.4
    gzf: list[Fraction] = Field(default_factory=lambda: [0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45])
    source: str = "BNetzA BK6-22-300, Anlage 1 (2023-11-27)"


class Penalties(_Model):
    """Prices of the slack variables that keep the LP always feasible, in EUR per kWh of slack.

    Their order matters: a limit breach must cost more than dimming a §14a device, so the plan dims
    before it overloads; dimming must cost more than any price spread, so that a device without a
    flexibility contract is never shifted for profit. ``terminal_shortfall`` (batteries) and
    ``heat_store_shortfall`` are the defaults of the end-of-horizon conditions, which each asset may
    override (``terminal_penalty_eur_per_kwh``) or make hard (``terminal_hard``: priced at
    ``hard_terminal``, above every other slack, so it is met whenever it physically can be and
    reported if not). ``reserve`` prices a kWh that flexible devices draw inside a connection's
    planning reserve (see ``SiteInputs.reserve_kw``): above any price spread, so that flexible load
    moves out of the forecast's uncertainty where it can, below dimming and EV energy missed, so
    that nobody is dimmed or left uncharged for a statistical margin. ``below_guaranteed_min`` applies only behind a
    hard-limit connection, where a §14a device may have to go below its guaranteed minimum (the
    limit is physical); it is below unmet load, so households are not shed to keep a device's minimum.
    """

    unmet_load_eur_per_kwh: PositiveFloat = 10.0
    excess_generation_eur_per_kwh: PositiveFloat = 10.0
    limit_breach_eur_per_kwh: PositiveFloat = 5.0
    unmet_heat_eur_per_kwh: PositiveFloat = 3.0
    ev_energy_missed_eur_per_kwh: PositiveFloat = 2.0
    terminal_shortfall_eur_per_kwh: PositiveFloat = 1.5
    heat_store_shortfall_eur_per_kwh: PositiveFloat = 1.5
    hard_terminal_eur_per_kwh: PositiveFloat = 1000.0
    dimming_eur_per_kwh: PositiveFloat = 1.0
    below_guaranteed_min_eur_per_kwh: PositiveFloat = 8.0
    reserve_eur_per_kwh: PositiveFloat = 0.5


class GridFeeWindow(_Model):
    """A daily window in local time (§14a module 3 style) with its own grid fee."""

    start: dt.time
    end: dt.time
    fee_eur_per_kwh: NonNegFloat

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted_time(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 17:00 as the base-60 integer 1020; refuse it instead of
        # turning it into 00:17 silently.
        if isinstance(value, int | float):
            raise ValueError("must be a quoted local time such as '17:00'")
        return value


FeedInPrice = float | Literal["spot"]


class Tariff(_Model):
    """Prices seen by the neighbourhood at its connection points (the default of every connection;
    a connection's own ``tariff`` overrides any of them).

    import_price_eur_per_kwh:  constant energy price, used when the input files give no price series.
    feed_in_price_eur_per_kwh: paid per kWh exported: a constant (EEG), or ``"spot"`` (direct marketing
                               at the day-ahead price: the prices file's ``spot_eur_per_kwh`` column,
                               else its ``price_eur_per_kwh``). A ``feed_in_eur_per_kwh`` column in the
                               prices file replaces the constant.
    grid_fee_eur_per_kwh:      standard grid fee on imported energy, replaced inside ``grid_fee_windows``.
    peak_charge_eur_per_kw:    charge on the highest import of each connection within the plan horizon
                               (the billing period's peak so far can be given as ``peak_so_far_kw``).
    co2_price_eur_per_t:       price on the CO2 of imported energy (intensity from the input series).
    """

    import_price_eur_per_kwh: float | None = 0.30
    feed_in_price_eur_per_kwh: FeedInPrice = 0.08
    grid_fee_eur_per_kwh: NonNegFloat = 0.0
    grid_fee_windows: list[GridFeeWindow] = Field(default_factory=list)
    peak_charge_eur_per_kw: NonNegFloat = 0.0
    co2_price_eur_per_t: NonNegFloat = 0.0
    co2_g_per_kwh: NonNegFloat = 380.0


class ConnectionTariff(_Model):
    """A connection's own tariff (another supplier or grid-fee zone): every field that is set
    replaces the site's ``tariff`` for this connection. ``import_price_eur_per_kwh`` is a constant
    that replaces the site's energy price (series or constant) at this connection."""

    import_price_eur_per_kwh: float | None = None
    feed_in_price_eur_per_kwh: FeedInPrice | None = None
    grid_fee_eur_per_kwh: NonNegFloat | None = None
    grid_fee_windows: list[GridFeeWindow] | None = None
    peak_charge_eur_per_kw: NonNegFloat | None = None


class FeedInRules(_Model):
    """German PV feed-in rules (EEG 2023 with the "Solarspitzengesetz", in force 2025-02-25), as
    settings rather than literals.

    negative_price_from:    arrays commissioned on or after this date (and of at least ``min_kwp``)
                            get no feed-in payment in any interval with a negative day-ahead price
                            (rule ``quarter_hour``), unless their ``negative_price_rule`` says otherwise.
    no_gateway_cap_from:    arrays commissioned on or after this date (and of at least ``min_kwp``)
                            without a smart-meter gateway may feed in at most ``no_gateway_cap_factor``
                            x kWp.
    """

    negative_price_from: dt.date = dt.date(2025, 2, 25)
    no_gateway_cap_from: dt.date = dt.date(2025, 2, 25)
    no_gateway_cap_factor: Fraction = 0.6
    min_kwp: NonNegFloat = 2.0
    source: str = "EEG 2023 §51, §9 (Solarspitzengesetz, BGBl. 2025 I Nr. 51)"


# --- the network ----------------------------------------------------------------------------------


class Feeder(_Model):
    """A low-voltage feeder below a transformer with its own thermal limits (kW)."""

    id: str
    import_limit_kw: NonNegFloat
    export_limit_kw: NonNegFloat


class ConnectionPoint(_Model):
    """A transformer (or grid connection) of the site.

    Limits default to rated_kva x power_factor in both directions. Zero is a valid limit: an export
    limit of 0 kW is a zero-feed-in connection, 0/0 a connection out of service. ``hard_limits``
    forbids breaching them; the plan then sheds load or spills generation instead (both reported as
    violations, never more than the inflexible load or generation there).
    ``peak_so_far_kw`` is the highest import already billed in the current peak-charge period.
    """

    id: str
    rated_kva: NonNegFloat
    power_factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    import_limit_kw: NonNegFloat | None = None
    export_limit_kw: NonNegFloat | None = None
    hard_limits: bool = False
    peak_so_far_kw: NonNegFloat = 0.0
    feeders: list[Feeder] = Field(default_factory=list)
    tariff: ConnectionTariff | None = None

    @property
    def limit_import_kw(self) -> float:
        return self.import_limit_kw if self.import_limit_kw is not None else self.rated_kva * self.power_factor

    @property
    def limit_export_kw(self) -> float:
        return self.export_limit_kw if self.export_limit_kw is not None else self.rated_kva * self.power_factor


class _Placed(_Model):
    """An asset attached to a connection point (and optionally one of its feeders)."""

    id: str
    connection: str
    feeder: str | None = None


class Household(_Placed):
    """A metered household or business whose load is inflexible (forecast or given series)."""

    meter_id: str
    annual_kwh: PositiveFloat
    profile: Profile = "H25"


NegativePriceRule = Literal["none", "quarter_hour", "1h", "2h", "3h", "4h", "6h"]


class PVArray(_Placed):
    """Rooftop or community PV. Output = availability (kW per kWp, from the inputs) x kwp.

    Feed-in rules (see :class:`FeedInRules`): ``negative_price_rule`` says in which intervals the
    array's exports earn no feed-in payment: ``none``; ``quarter_hour`` (every interval with a
    negative day-ahead price, systems from 2025-02-25); ``Nh`` (every interval of a run of at least
    N consecutive hours of negative prices, the older EEG rules: 6 h, 4 h, 3 h, 2 h, 1 h). Unset, it
    follows from ``commissioned`` (``quarter_hour`` from ``feed_in_rules.negative_price_from`` for
    arrays of at least ``min_kwp``, else ``none``). A new array without ``smart_meter_gateway`` is
    capped at ``feed_in_rules.no_gateway_cap_factor`` x kwp.
    """

    household: str | None = None
    kwp: NonNegFloat
    tilt_deg: Annotated[float, Field(ge=0.0, le=90.0)] = 30.0
    azimuth_deg: Annotated[float, Field(ge=0.0, lt=360.0)] = 180.0
    curtailable: bool = True
    commissioned: dt.date | None = None
    negative_price_rule: NegativePriceRule | None = None
    smart_meter_gateway: bool = False


class _Controllable(_Placed):
    """A §14a controllable device. Without a flexibility contract it follows its own requested
    profile and may only be dimmed down to its guaranteed minimum. ``ems`` groups devices behind one
    energy-management system that share one aggregate minimum."""

    flex_contract: bool = True
    ems: str | None = None


class Battery(_Controllable):
    """Home or community battery. SoC in fractions of ``capacity_kwh``.

    Charging draws from the node (positive power), discharging feeds it (negative power).
    SoC[t+1] = SoC[t] (1 - self_discharge_per_h dt) + (eta_c P_ch - P_dis / eta_d) dt.

    End of horizon: either a target ``terminal_soc`` (default: ``initial_soc``), whose shortfall
    costs ``terminal_penalty_eur_per_kwh`` (default ``penalties.terminal_shortfall_eur_per_kwh``) or,
    with ``terminal_hard``, ``penalties.hard_terminal_eur_per_kwh``; or a value of the stored energy
    (``stored_energy_value_eur_per_kwh``, no target).
    """

    household: str | None = None
    capacity_kwh: NonNegFloat
    charge_kw: NonNegFloat
    discharge_kw: NonNegFloat
    charge_efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    discharge_efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    soc_min: Fraction = 0.05
    soc_max: Fraction = 1.0
    initial_soc: Fraction = 0.5
    terminal_soc: Fraction | None = None
    terminal_penalty_eur_per_kwh: PositiveFloat | None = None
    terminal_hard: bool = False
    stored_energy_value_eur_per_kwh: float | None = None
    self_discharge_per_h: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    throughput_cost_eur_per_kwh: NonNegFloat = 0.0


class EVCharger(_Controllable):
    """A (non-public) wallbox. ``v2g`` allows discharging into the node (with a flexibility contract)."""

    household: str | None = None
    max_kw: NonNegFloat
    v2g: bool = False
    efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0


class EVSession(_Model):
    """A car plugged into ``charger`` from ``arrival`` to ``departure`` that needs
    ``energy_needed_kwh`` more in its battery by departure.

    ``capacity_kwh``/``initial_soc`` bound the car battery (needed for V2G); without them the car
    accepts exactly the energy it needs and starts from 0 kWh of that.
    """

    id: str
    charger: str
    arrival: dt.datetime
    departure: dt.datetime
    energy_needed_kwh: NonNegFloat
    capacity_kwh: PositiveFloat | None = None
    initial_soc: Fraction | None = None
    #: the car may be discharged (V2G) where its charger can and has a flexibility contract (the
    #: API's sessions ask for consent explicitly; a site file's sessions have it unless they say no)
    v2g_consent: bool = True

    @field_validator("arrival", "departure")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("must include a UTC offset, e.g. 2026-01-15T17:30:00+01:00")
        return value


class COPCurve(_Model):
    """COP(T) = intercept + slope x T_out (degC), clipped to [min_cop, max_cop]."""

    intercept: PositiveFloat = 3.2
    slope_per_degc: float = 0.08
    min_cop: PositiveFloat = 1.5
    max_cop: PositiveFloat = 5.5


class HeatPump(_Controllable):
    """Air-to-water heat pump with a thermal store.

    Heat into the store = COP(T_out[t]) x electric power; the store (kWh thermal) loses
    ``store_loss_per_h`` of its content per hour and must cover the heat demand (kW thermal, from
    the inputs). At the horizon's end the store should hold at least ``terminal_store`` (fraction;
    default: where it started); a shortfall costs ``terminal_penalty_eur_per_kwh`` (default
    ``penalties.heat_store_shortfall_eur_per_kwh``), or with ``terminal_hard``
    ``penalties.hard_terminal_eur_per_kwh``.

    ``store_empty_degc`` and ``store_full_degc`` (both or neither) let the store report its state
    as a temperature: content = ``store_kwh`` x (T - empty) / (full - empty), linear in between.
    """

    household: str | None = None
    electric_kw: NonNegFloat
    cop: COPCurve = Field(default_factory=COPCurve)
    store_kwh: NonNegFloat = 10.0
    store_loss_per_h: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.01
    initial_store: Fraction = 0.5
    terminal_store: Fraction | None = None
    terminal_penalty_eur_per_kwh: PositiveFloat | None = None
    terminal_hard: bool = False
    annual_heat_kwh: PositiveFloat | None = None
    store_empty_degc: Annotated[float, Field(ge=-50.0, le=150.0)] | None = None
    store_full_degc: Annotated[float, Field(ge=-50.0, le=150.0)] | None = None

    @model_validator(mode="after")
    def _store_temperatures(self) -> HeatPump:
        empty, full = self.store_empty_degc, self.store_full_degc
        if (empty is None) != (full is None):
            raise ValueError("store_empty_degc and store_full_degc go together (give both or neither)")
        if empty is not None and full is not None and full <= empty:
            raise ValueError(f"store_full_degc ({full:g}) must be above store_empty_degc ({empty:g})")
        return self


class SiteInfo(_Model):
    id: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: str = ""
    timezone: str = "Europe/Berlin"
    latitude: Annotated[float, Field(ge=-90, le=90)] = 49.87
    longitude: Annotated[float, Field(ge=-180, le=180)] = 8.65
    resolution_min: Literal[5, 15, 30, 60] = 15

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class InputFiles(_Model):
    """Time-series files, relative to the YAML file. Each CSV has a ``timestamp`` column (ISO 8601;
    naive stamps are read in the site's time zone) and the columns named below."""

    base_load: str | None = None  # kW per household id (columns = household ids)
    pv_availability: str | None = None  # kW per kWp per PV array id (columns = array ids)
    heat_demand: str | None = None  # kW thermal per heat pump id (columns = heat pump ids)
    weather: str | None = None  # temp_degc
    prices: str | None = None  # price_eur_per_kwh, optional co2_g_per_kwh


class Site(_Model):
    """A whole neighbourhood as loaded from YAML (``base_dir`` is where relative files live)."""

    site: SiteInfo
    connections: list[ConnectionPoint] = Field(min_length=1)
    households: list[Household] = Field(default_factory=list)
    pv_arrays: list[PVArray] = Field(default_factory=list)
    batteries: list[Battery] = Field(default_factory=list)
    ev_chargers: list[EVCharger] = Field(default_factory=list)
    ev_sessions: list[EVSession] = Field(default_factory=list)
    heat_pumps: list[HeatPump] = Field(default_factory=list)
    tariff: Tariff = Field(default_factory=Tariff)
    feed_in_rules: FeedInRules = Field(default_factory=FeedInRules)
    par14a: Par14aSettings = Field(default_factory=Par14aSettings)
    penalties: Penalties = Field(default_factory=Penalties)
    inputs: InputFiles = Field(default_factory=InputFiles)
    base_dir: Path = Field(default=Path("."), exclude=True)

    @property
    def id(self) -> str:
        return self.site.id

    def connection(self, cid: str) -> ConnectionPoint:
        return next(c for c in self.connections if c.id == cid)


ASSET_LISTS = ("households", "pv_arrays", "batteries", "ev_chargers", "heat_pumps")


# --- loading and validation -----------------------------------------------------------------------


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class _StringTimesLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that leaves timestamps as strings, so that pydantic (not PyYAML) parses them and
    an offset-less time is refused instead of read as UTC."""


_StringTimesLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in _BaseLoader.yaml_implicit_resolvers.copy().items()
}


def read_yaml_mapping(path: str | Path, kind: str, keys: str) -> dict[str, Any]:
    """A YAML mapping from `path` (a `kind` such as "site file" with top-level `keys`), timestamps
    kept as strings so that pydantic refuses an offset-less one; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot read {kind} ({exc.strerror})") from exc
    return parse_yaml_mapping(text, str(path), keys)


def parse_yaml_mapping(text: str, where: str, keys: str) -> dict[str, Any]:
    """A YAML mapping from `text` (named `where` in errors, with the line), timestamps kept as
    strings (see :func:`read_yaml_mapping`)."""
    try:
        raw = yaml.load(text, Loader=_StringTimesLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        place = f"{where}:{mark.line + 1}" if mark is not None else where
        raise InputError(place, f"not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(raw, dict):
        raise InputError(where, f"must be a YAML mapping with {keys}", type(raw).__name__)
    return raw


def load_site(path: str | Path) -> Site:
    """Read and validate a site YAML; raise :class:`InputErrors` naming every bad path and value."""
    raw = read_yaml_mapping(path, "site file", "site, connections, ...")
    return site_from_dict(raw, base_dir=Path(path).parent, context=str(path))


def site_from_dict(raw: dict[str, Any], base_dir: Path | None = None, context: str = "site") -> Site:
    """Validate a site given as plain data (the YAML or the API's JSON)."""
    try:
        site = Site.model_validate({**raw, "base_dir": base_dir or Path(".")})
    except ValidationError as exc:
        raise InputErrors(pydantic_errors(exc), context) from None
    problems = check_references(site)
    if problems:
        raise InputErrors(problems, context)
    return site


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "too_short": "must not be empty",
}


def pydantic_errors(exc: ValidationError) -> list[InputError]:
    """Turn pydantic's errors into InputErrors with a dotted/indexed path such as
    ``batteries[3].capacity_kwh``."""
    out = []
    for err in exc.errors():
        where = format_loc(err["loc"])
        template = _MESSAGES.get(err["type"])
        ctx = {k: f"{v:g}" if isinstance(v, int | float) else v for k, v in err.get("ctx", {}).items()}
        what = template.format(**ctx) if template else err["msg"].removeprefix("Value error, ")
        if err["type"] in ("missing",):
            out.append(InputError(where, what))
        else:
            out.append(InputError(where, what, err.get("input")))
    return out


def format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def check_references(site: Site) -> list[InputError]:
    """Cross-field checks pydantic cannot do alone: unique ids, known connections, feeders and
    chargers, session order, SoC bounds."""
    problems: list[InputError] = []
    seen: dict[str, str] = {}
    feeders = {c.id: {f.id for f in c.feeders} for c in site.connections}
    for i, conn in enumerate(site.connections):
        _unique(conn.id, f"connections[{i}].id", seen, problems)
        for j, feeder in enumerate(conn.feeders):
            _unique(feeder.id, f"connections[{i}].feeders[{j}].id", seen, problems)
    household_ids = {h.id for h in site.households}
    for name in ASSET_LISTS:
        for i, asset in enumerate(getattr(site, name)):
            where = f"{name}[{i}]"
            _unique(asset.id, f"{where}.id", seen, problems)
            if asset.connection not in feeders:
                problems.append(InputError(f"{where}.connection", "unknown connection point", asset.connection))
            elif asset.feeder is not None and asset.feeder not in feeders[asset.connection]:
                problems.append(
                    InputError(f"{where}.feeder", f"not a feeder of connection {asset.connection}", asset.feeder)
                )
            owner = getattr(asset, "household", None)
            if owner is not None and owner not in household_ids:
                problems.append(InputError(f"{where}.household", "unknown household", owner))
    for i, bat in enumerate(site.batteries):
        where = f"batteries[{i}]"
        if bat.soc_min > bat.soc_max:
            problems.append(InputError(f"{where}.soc_min", f"must be <= soc_max ({bat.soc_max})", bat.soc_min))
        elif not bat.soc_min <= bat.initial_soc <= bat.soc_max:
            problems.append(
                InputError(
                    f"{where}.initial_soc",
                    f"must lie in [soc_min, soc_max] = [{bat.soc_min}, {bat.soc_max}]",
                    bat.initial_soc,
                )
            )
        valued = bat.stored_energy_value_eur_per_kwh is not None
        for name in ("terminal_soc", "terminal_penalty_eur_per_kwh", "terminal_hard"):
            if valued and getattr(bat, name) not in (None, False):
                problems.append(
                    InputError(
                        f"{where}.{name}",
                        "conflicts with stored_energy_value_eur_per_kwh (a target or a value, not both)",
                        getattr(bat, name),
                    )
                )
        if bat.terminal_soc is not None and not bat.soc_min <= bat.terminal_soc <= bat.soc_max:
            problems.append(
                InputError(
                    f"{where}.terminal_soc",
                    f"must lie in [soc_min, soc_max] = [{bat.soc_min}, {bat.soc_max}]",
                    bat.terminal_soc,
                )
            )
    for i, hp in enumerate(site.heat_pumps):
        if hp.cop.min_cop > hp.cop.max_cop:
            problems.append(InputError(f"heat_pumps[{i}].cop.min_cop", "must be <= max_cop", hp.cop.min_cop))
    chargers = {c.id for c in site.ev_chargers}
    last_at: dict[str, tuple[int, EVSession]] = {}
    for i, ses in sorted(enumerate(site.ev_sessions), key=lambda item: (item[1].charger, item[1].arrival)):
        prev = last_at.get(ses.charger)
        if prev is not None and ses.arrival < prev[1].departure:
            problems.append(
                InputError(
                    f"ev_sessions[{i}].arrival",
                    f"overlaps session {prev[1].id} on charger {ses.charger}",
                    ses.arrival.isoformat(),
                )
            )
        last_at[ses.charger] = (i, ses)
    for i, ses in enumerate(site.ev_sessions):
        where = f"ev_sessions[{i}]"
        _unique(ses.id, f"{where}.id", seen, problems)
        if ses.charger not in chargers:
            problems.append(InputError(f"{where}.charger", "unknown EV charger", ses.charger))
        if ses.departure <= ses.arrival:
            problems.append(
                InputError(
                    where, "departure before arrival", f"{ses.arrival.isoformat()} -> {ses.departure.isoformat()}"
                )
            )
        if ses.capacity_kwh is not None:
            start_kwh = (ses.initial_soc or 0.0) * ses.capacity_kwh
            if start_kwh + ses.energy_needed_kwh > ses.capacity_kwh + 1e-9:
                problems.append(
                    InputError(
                        f"{where}.energy_needed_kwh",
                        f"initial energy + need exceeds capacity_kwh ({ses.capacity_kwh})",
                        ses.energy_needed_kwh,
                    )
                )
        elif ses.initial_soc is not None:
            problems.append(InputError(f"{where}.initial_soc", "needs capacity_kwh", ses.initial_soc))
    return problems


def _unique(ident: str, where: str, seen: dict[str, str], problems: list[InputError]) -> None:
    if ident in seen:
        problems.append(InputError(where, f"duplicate id (also at {seen[ident]})", ident))
    else:
        seen[ident] = where
