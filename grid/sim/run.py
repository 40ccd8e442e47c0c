"""Run the real planning loop against simulated devices on a simulated clock.

Three ways through the same days and the same truth (:mod:`grid.sim.truth`):

* ``uncontrolled``: every device does what it would on its own (no plan);
* ``closed``: the scheduler's run (:class:`grid.schedule.runner.PlanningService`, one for the whole
  run, on one SQLite store) plans every ``replan_every_min`` from what the store holds: forecasts
  issued every ``forecast_every_h`` from the meter readings the simulator ingested, the latest
  state telemetry, the EV sessions the cars announced; its published set-points drive the devices;
* ``perfect``: one LP over the whole period on the truth, every car known ahead, ending with the
  storage states the closed loop realised (pinned), its set-points played through the same devices.

Each interval the devices' realised power sums, with the household load and PV, into the flow of
each transformer: that flow is what the report measures.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from grid import demo
from grid.demo_history import ensure_history, ingest_history
from grid.domain import Site, load_site
from grid.errors import InputError
from grid.forecast.site import run_site
from grid.forecast.weather import Weather
from grid.schedule.inputs import forecast_provider
from grid.schedule.performance import evaluate_and_publish, kept_plan_body
from grid.schedule.runner import PlanningConfig, PlanningService
from grid.series import SiteInputs, load_inputs
from grid.sim.clock import SimClock
from grid.sim.devices import Fleet, StepResult, draw_compliance
from grid.sim.feeds import Feeds
from grid.sim.truth import Truth, make_truth, write_sim_site
from grid.store.engine import make_engine
from grid.store.migrate import upgrade
from grid.store.sites import register_site
from grid.timeindex import horizon_index
from models.solve import plan_site
from models.warm import WarmPlanner

Mode = Literal["uncontrolled", "closed", "perfect"]


@dataclass(frozen=True)
class SimConfig:
    """What to simulate; see :func:`simulate`."""

    site_path: Path
    days: float = 7.0
    seed: int = demo.DEFAULT_SEED
    compliance: float = 0.95
    noise_sd: float = 0.02
    forecasts: Literal["stored", "perfect"] = "stored"
    horizon_h: float = 24.0
    replan_every_min: int = 15
    forecast_every_h: float = 24.0
    #: meter readings reach the store in batches of this many intervals (a head-end's delivery)
    meter_batch_steps: int = 4
    #: ingest the demo meter history before the first interval (cached as a template store)
    history: bool = True
    faults: bool = True
    out_dir: Path = Path("out/sim")
    start: pd.Timestamp | None = None  # default: the first interval of the site's input files


@dataclass
class Outcome:
    """What one way through the days realised: transformer flows (C, T) in kW (> 0 import) and
    the counters of the report."""

    mode: Mode
    flow_kw: np.ndarray
    ev_missed_kwh: float = 0.0
    ev_delivered_kwh: float = 0.0
    unmet_heat_kwh: float = 0.0
    dimmings: int = 0
    end_soc_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    end_store_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    runs: int = 0
    warm_runs: int = 0
    cold_runs: int = 0
    failed_runs: int = 0
    seconds: float = 0.0
    plan_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class World:
    """The prepared simulation: the site as planned, its truth, the store (closed loop only)."""

    config: SimConfig
    site_path: Path
    site: Site
    truth: Truth
    inputs: SiteInputs  # the truth as the files hold it (what the devices live through)
    setup_s: float = 0.0


def prepare(config: SimConfig) -> World:
    """The simulated site directory (truth files, no sessions in the YAML)."""
    t0 = time.perf_counter()
    base = load_site(config.site_path)
    start = config.start if config.start is not None else pd.Timestamp(load_inputs(base).index[0]).tz_convert("UTC")
    truth = make_truth(base, start, config.days, config.horizon_h + config.forecast_every_h, config.seed)
    sim_path = write_sim_site(config.site_path, truth, config.out_dir / "site")
    site = load_site(sim_path)
    return World(config, sim_path, site, truth, load_inputs(site), time.perf_counter() - t0)


def template_path(cfg: SimConfig) -> Path:
    """The template store of `cfg`: with ``history``, named by the sha256 of the history file it
    holds (:func:`ensure_history` regenerates that file when the site YAML or the generator's code
    changed), so that a template of an older history is never copied again."""
    if not cfg.history:
        return cfg.out_dir / "template-empty.sqlite"
    history = ensure_history(cfg.site_path, cfg.out_dir / "history.csv.gz")
    return cfg.out_dir / f"template-history-{history.sha256[:16]}.sqlite"


def open_store(world: World) -> Engine:
    """A fresh SQLite store for one closed-loop run: a copy of the template that holds the site
    and (with ``history``) the demo meter history up to the first interval."""
    cfg = world.config
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    template = template_path(cfg)
    if not template.exists():
        if cfg.history:  # templates of an older history (another demo generator or site file)
            for stale in cfg.out_dir.glob("template-history*.sqlite"):
                stale.unlink()
        scratch = template.with_suffix(".tmp")
        scratch.unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{scratch}")
        upgrade(engine, "heads")
        if cfg.history:
            history = ensure_history(cfg.site_path, cfg.out_dir / "history.csv.gz")
            ingest_history(world.site_path, Path(history.path), engine=engine)  # no YAML sessions
        register_site(engine, world.site)
        engine.dispose()
        scratch.replace(template)
    db = cfg.out_dir / "closed-loop.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, db)
    engine = make_engine(f"sqlite:///{db}")
    sa.event.listen(engine, "connect", _scratch_pragmas)  # after the store's own (WAL, NORMAL)
    upgrade(engine, "heads")  # a template kept from an older schema gets the newer tables
    register_site(engine, world.site)
    return engine


def _scratch_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """The simulation's store is a scratch copy made anew for each run: its commits need not
    survive an OS crash, so they skip the fsync at WAL checkpoints (``synchronous=OFF``; the
    store's code and transactions are unchanged). ~500 commits a simulated day."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.close()


class TruthProvider:
    """``--forecasts perfect``: the planner sees the truth over its horizon."""

    def __init__(self, inputs: SiteInputs) -> None:
        self.inputs = inputs

    def __call__(self, site: Site, start: pd.Timestamp, hours: float) -> SiteInputs:
        return self.inputs.window(horizon_index(start, hours, site.site.resolution_min))


class IssuedForecasts:
    """``--forecasts stored``: :func:`grid.schedule.inputs.planning_inputs` read once per forecast
    issue over everything the runs until the next issue plan on, and cut to each run's horizon.

    The numbers are the ones a call per run returns (the store holds the same forecasts and
    publications until the next issue); a call per run costs ~9 s on the demo site, one query per
    forecast target (~200). :meth:`issue` is called after each forecast run."""

    def __init__(self, engine: Engine) -> None:
        self.provider = forecast_provider(engine)
        self.inputs: SiteInputs | None = None

    def issue(self, site: Site, at: pd.Timestamp, hours: float) -> None:
        self.inputs = self.provider(site, at, hours)

    def __call__(self, site: Site, start: pd.Timestamp, hours: float) -> SiteInputs:
        index = horizon_index(start, hours, site.site.resolution_min)
        if self.inputs is None or index[-1] not in self.inputs.index or start < self.inputs.index[0]:
            return self.provider(site, start, hours)
        return self.inputs.window(index)


class Capture:
    """The set-point publisher: keeps the latest set-points the service published."""

    connected = True

    def __init__(self) -> None:
        self.points: dict[str, Any] | None = None

    def publish(self, site_id: str, points: dict[str, Any]) -> int:
        self.points = points
        return len(points["assets"])

    def at(self, now: pd.Timestamp) -> dict[str, float] | None:
        """asset id -> kW for the interval starting at `now`; None if nothing covers it."""
        if self.points is None:
            return None
        stamps = [pd.Timestamp(s) for s in self.points["intervals"]]
        if now not in stamps:
            return None
        k = stamps.index(now)
        return {
            aid: float(a["power_kw"][k]) for aid, a in self.points["assets"].items() if a["power_kw"][k] is not None
        }


def _fleet(world: World, compliance: float, noise_sd: float, salt: str) -> Fleet:
    rng = demo._rng(world.config.seed, f"sim_devices_{salt}")
    compliant = draw_compliance(world.site, compliance, demo._rng(world.config.seed, "sim_compliance"))
    return Fleet(world.site, world.site.site.resolution_min / 60, compliant, noise_sd, rng)


def _flow(site: Site, base_kw: np.ndarray, r: StepResult) -> np.ndarray:
    """Import (> 0) per connection this interval (kW)."""
    pos = {c.id: i for i, c in enumerate(site.connections)}
    out = np.zeros(len(site.connections))
    for assets, kw in (
        (site.households, base_kw),
        (site.pv_arrays, r.pv_kw),
        (site.batteries, r.battery_kw),
        (site.heat_pumps, r.heat_pump_kw),
        (site.ev_chargers, r.ev_kw),
    ):
        idx = np.array([pos[a.connection] for a in assets], dtype=int)
        if len(idx):
            np.add.at(out, idx, kw)
    return out


def _truth_at(inputs: SiteInputs, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    return (
        inputs.base_load_kw.iloc[k].to_numpy(dtype=float),
        inputs.pv_kw_per_kwp.iloc[k].to_numpy(dtype=float) if inputs.pv_kw_per_kwp is not None else np.zeros(0),
        inputs.heat_demand_kw.iloc[k].to_numpy(dtype=float) if inputs.heat_demand_kw is not None else np.zeros(0),
        float(inputs.temp_degc.iloc[k]) if inputs.temp_degc is not None else 10.0,
    )


def _columns(world: World) -> SiteInputs:
    """The truth with columns in site order (household, array, heat pump)."""
    s, inp = world.site, world.inputs
    return SiteInputs(
        base_load_kw=inp.base_load_kw[[h.id for h in s.households]],
        pv_kw_per_kwp=inp.pv_kw_per_kwp[[p.id for p in s.pv_arrays]] if inp.pv_kw_per_kwp is not None else None,
        heat_demand_kw=inp.heat_demand_kw[[h.id for h in s.heat_pumps]] if inp.heat_demand_kw is not None else None,
        temp_degc=inp.temp_degc,
    )


def play(
    world: World,
    mode: Mode,
    setpoints_at: Any = None,
    feeds: Feeds | None = None,
    compliance: float = 1.0,
    noise_sd: float = 0.0,
    clock: SimClock | None = None,
    pace_s: float = 0.0,
) -> tuple[Outcome, Fleet]:
    """Play the days through the devices. `setpoints_at(k, now)` gives the set-points of interval
    `k` (None: uncontrolled); `feeds`, when given, receives the readings, telemetry and session
    events (before `setpoints_at` of the next interval is asked). `clock` (at the truth's start)
    is the one the caller shares, e.g. with a served API; `pace_s` > 0 waits that long of wall
    time per interval (only for people watching a served replay; the simulation never waits)."""
    site, truth = world.site, world.truth
    steps = truth.steps
    clock = clock or SimClock(truth.start, site.site.resolution_min)
    fleet = _fleet(world, compliance, noise_sd, mode)
    inputs = _columns(world)
    arrivals: dict[int, list[Any]] = {}
    for s in truth.sessions:
        k = int((pd.Timestamp(s.arrival) - truth.start) / clock.interval)
        arrivals.setdefault(max(k, 0), []).append(s)
    out = Outcome(mode, np.zeros((len(site.connections), steps)))
    t0 = time.perf_counter()
    for k in range(steps):
        now = clock.now
        for s in arrivals.get(k, []):
            from grid.sim.devices import Car

            fleet.cars[s.charger] = Car(s, s.energy_needed_kwh, pd.Timestamp(s.departure).timestamp())
            if feeds is not None:
                feeds.arrive(s, now)
        points = setpoints_at(k, now) if setpoints_at is not None else None
        base, pv, heat, temp = _truth_at(inputs, k)
        r = fleet.step(points, base, pv, heat, temp)
        out.flow_kw[:, k] = _flow(site, base, r)
        out.unmet_heat_kwh += r.unmet_heat_kwh
        if pace_s > 0:
            time.sleep(pace_s)
        end = clock.tick()
        if feeds is not None:
            feeds.readings(k, end, base, r.pv_kw, out.flow_kw[:, k], fleet.dt_h)
            feeds.telemetry(end, fleet.soc_kwh, fleet.store_kwh, r.ev_kw)
        for charger, car in list(fleet.cars.items()):
            if car.departure_s <= end.timestamp():
                out.ev_missed_kwh += car.remaining_kwh
                out.ev_delivered_kwh += car.delivered_kwh
                del fleet.cars[charger]
                if feeds is not None:
                    feeds.leave(car.session.id, pd.Timestamp(car.departure_s, unit="s", tz="UTC"), end)
            # a charging car's remaining need is not announced: the planner derives it from the
            # wallbox's power telemetry (grid.schedule.live.planned_sessions)
    for car in fleet.cars.values():  # still plugged in at the end (departure after the window)
        out.ev_missed_kwh += car.remaining_kwh
        out.ev_delivered_kwh += car.delivered_kwh
    out.end_soc_kwh = fleet.soc_kwh.copy()
    out.end_store_kwh = fleet.store_kwh.copy()
    out.seconds = time.perf_counter() - t0
    if feeds is not None:
        out.counts = dict(feeds.counts)
    return out, fleet


def uncontrolled(world: World) -> Outcome:
    return play(world, "uncontrolled")[0]


def loop_service(world: World, engine: Engine) -> PlanningService:
    """The closed loop's planning service: forecasts read once per issue (or the truth with
    ``forecasts="perfect"``), its own kept model (a run never starts from another run's basis),
    set-points published to a :class:`Capture`."""
    cfg, site = world.config, world.site
    replan_steps = max(1, cfg.replan_every_min // site.site.resolution_min)
    provider = IssuedForecasts(engine) if cfg.forecasts == "stored" else TruthProvider(world.inputs)
    return PlanningService(
        engine,
        {site.id: world.site_path},
        PlanningConfig(horizon_hours=cfg.horizon_h, time_limit_s=60.0, publish_intervals=replan_steps),
        inputs_provider=provider,
        planner=WarmPlanner(),
        publisher=Capture(),
    )


def closed_loop(
    world: World,
    engine: Engine,
    service: PlanningService | None = None,
    clock: SimClock | None = None,
    pace_s: float = 0.0,
) -> Outcome:
    """The closed loop on the store at `engine` (see the module docstring), through `service`
    (default :func:`loop_service`; a served API's service must have been built like it)."""
    cfg, site = world.config, world.site
    res = site.site.resolution_min
    replan_steps = max(1, cfg.replan_every_min // res)
    forecast_steps = max(1, round(cfg.forecast_every_h * 60 / res))
    own = service is None
    service = service or loop_service(world, engine)
    capture = service.publisher
    provider = service.inputs_provider
    if not isinstance(capture, Capture) or not isinstance(provider, IssuedForecasts | TruthProvider):
        raise TypeError("the closed loop needs a service built like loop_service (Capture, IssuedForecasts)")
    issued = provider if isinstance(provider, IssuedForecasts) else None
    weather = Weather(world.inputs.temp_degc)
    stats = {
        "runs": 0,
        "warm": 0,
        "cold": 0,
        "failed": 0,
        "dimmings": 0,
        "plan_s": 0.0,
        "forecast_s": 0.0,
        "evaluate_s": 0.0,
    }
    notes: list[str] = []
    body: dict[str, Any] | None = None

    def setpoints_at(k: int, now: pd.Timestamp) -> dict[str, float] | None:
        nonlocal body
        if cfg.forecasts == "stored" and k % forecast_steps == 0:
            t = time.perf_counter()
            try:
                run_site(
                    engine, site.id, as_of=now, hours=cfg.horizon_h + cfg.forecast_every_h, weather=weather, model=site
                )
            except InputError as exc:  # no history yet: the planner starts cold, and says so
                notes.append(str(exc))
            if issued is not None:
                issued.issue(site, now, cfg.horizon_h + cfg.forecast_every_h)
            stats["forecast_s"] += time.perf_counter() - t
        if k % replan_steps == 0:
            t = time.perf_counter()
            if k > 0:  # realised against planned for the intervals that ended (as the scheduler's job)
                evaluate_and_publish(engine, site.id, now)
            stats["evaluate_s"] += time.perf_counter() - t
            t = time.perf_counter()
            result = service.run(site.id, now.to_pydatetime(), trigger="scheduled")
            stats["plan_s"] += time.perf_counter() - t
            stats["runs"] += 1
            if result.plan_id is not None and result.status != "failed":
                body = kept_plan_body(engine, result.plan_id)  # parsed once, also for the evaluation
                warm = bool((body.get("solver") or {}).get("warm_start"))
                stats["warm" if warm else "cold"] += 1
            else:
                stats["failed"] += 1
        if body is not None:
            stamp = now.isoformat()
            stats["dimmings"] += sum(
                1 for d in body.get("dimming", []) if pd.Timestamp(d["start"]) == now or d["start"] == stamp
            )
        return capture.at(now)

    feeds = Feeds(engine, site, demo._rng(cfg.seed, "sim_feeds"), world.truth.steps, cfg.faults, cfg.meter_batch_steps)
    try:
        out, _ = play(world, "closed", setpoints_at, feeds, cfg.compliance, cfg.noise_sd, clock, pace_s)
    finally:
        if own:
            service.close()
    out.runs, out.warm_runs, out.cold_runs, out.failed_runs = (
        int(stats["runs"]),
        int(stats["warm"]),
        int(stats["cold"]),
        int(stats["failed"]),
    )
    out.dimmings = int(stats["dimmings"])
    out.plan_seconds = float(stats["plan_s"])
    out.counts["forecast_ms"] = round(1000 * stats["forecast_s"])
    out.counts["evaluate_ms"] = round(1000 * stats["evaluate_s"])
    return out


def perfect(world: World, pinned: Outcome | None) -> Outcome:
    """One LP over the whole period on the truth with every car known ahead; batteries and heat
    stores end where `pinned` (the closed loop) ended. Its set-points go through the devices
    (complying, no noise), so that it is measured like the others."""
    site, truth = world.site, world.truth
    index = truth.index
    update: dict[str, Any] = {"ev_sessions": truth.sessions}
    if pinned is not None:
        update["batteries"] = [
            b.model_copy(
                update={
                    "terminal_soc": float(np.clip(v / b.capacity_kwh, b.soc_min, b.soc_max))
                    if b.capacity_kwh
                    else None,
                    "terminal_hard": True,
                }
            )
            for b, v in zip(site.batteries, pinned.end_soc_kwh, strict=True)
        ]
        update["heat_pumps"] = [
            h.model_copy(
                update={
                    "terminal_store": float(np.clip(v / h.store_kwh, 0.0, 1.0)) if h.store_kwh else None,
                    "terminal_hard": True,
                }
            )
            for h, v in zip(site.heat_pumps, pinned.end_store_kwh, strict=True)
        ]
    lp_site = site.model_copy(update=update)
    t0 = time.perf_counter()
    plan = plan_site(lp_site, world.inputs.window(index), index)
    plan_s = time.perf_counter() - t0
    body = plan.to_dict()
    assets = {aid: a["power_kw"] for aid, a in body["assets"].items() if a.get("type") != "inflexible_load"}

    def setpoints_at(k: int, now: pd.Timestamp) -> dict[str, float]:
        return {aid: float(v[k]) for aid, v in assets.items() if v[k] is not None}

    out, _ = play(world, "perfect", setpoints_at)
    out.dimmings = len(body.get("dimming", []))
    out.runs, out.cold_runs, out.plan_seconds = 1, 1, plan_s
    out.counts["lp_status"] = 0 if plan.status in ("optimal",) else 1
    return out
