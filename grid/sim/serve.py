"""``grid demo --simulate``: the API served on the simulator's clock, with the closed loop behind it.

The app is built on the simulation's store with the simulator's clock, its inputs provider and
set-point publisher (the API's scheduler off: the loop runs the planning service at the simulated
quarter-hours). The loop plays the days in a background thread, `pace_s` of wall time per
simulated interval, so that the dashboard, the set-points and the plans move with the replay clock.
"""

from __future__ import annotations

import threading

from grid.sim.clock import SimClock
from grid.sim.run import World, closed_loop, loop_service, open_store


def serve_simulation(world: World, port: int, pace_s: float) -> tuple[str, threading.Thread]:
    """Serve the API on `port` while the closed loop plays in a thread; returns (an admin key
    for the site, the thread). Blocks until the server stops."""
    from api.app import create_app
    from api.serving import run_server
    from api.settings import load_settings
    from grid.store.apikeys import create_key

    engine = open_store(world)
    template = loop_service(world, engine)
    settings = load_settings()
    settings.sites = {world.site.id: world.site_path}
    settings.scheduler_enabled = False
    settings.mqtt_enabled = False
    clock = SimClock(world.truth.start, world.site.site.resolution_min)
    app = create_app(
        settings,
        engine=engine,
        clock=clock,
        inputs_provider=template.inputs_provider,
        planner=template.planner,
        publisher=template.publisher,
    )
    service = app.state.ctx.service
    service.config = template.config  # the loop's horizon and set-point intervals, solved in-process
    _, key = create_key(engine, "admin", [world.site.id], label="grid demo --simulate")
    thread = threading.Thread(
        target=closed_loop, args=(world, engine, service, clock, pace_s), name="simulation", daemon=True
    )
    thread.start()
    print(f"admin key for site {world.site.id} (shown once): {key}", flush=True)
    print(f"dashboard: http://127.0.0.1:{port}/dashboard  (simulated clock from {world.truth.start.isoformat()})")
    run_server(app, "127.0.0.1", port, log_level="warning")
    return key, thread
