"""`grid serve` (API + scheduler in one uvicorn process) and `grid keys create|list|revoke`.

Wire into grid/cli.py with::

    from api import cli as api_cli
    app.command("serve")(api_cli.serve_command)
    app.add_typer(api_cli.keys_app, name="keys")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from grid.errors import InputError, InputErrors

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # errors people copy never wrap
keys_app = typer.Typer(add_completion=False, no_args_is_help=True, help="API keys (stored hashed).")
DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: $GRID_DATABASE_URL).")]
EnvOption = Annotated[Path | None, typer.Option("--env-file", help="KEY=value file with GRID_* settings.")]


def serve_command(
    host: Annotated[str | None, typer.Option(help="Listen address (default GRID_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default GRID_PORT or 8000).")] = None,
    env_file: EnvOption = None,
    no_scheduler: Annotated[bool, typer.Option("--no-scheduler", help="Serve only; do not re-plan.")] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Plan on the Dask cluster of this scheduler, e.g. tcp://host:8786 (GRID_DASK_SCHEDULER).",
        ),
    ] = None,
    dask_workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Plan on an embedded Dask cluster of this many workers; 0: one process per site (GRID_DASK_WORKERS).",
        ),
    ] = None,
) -> None:
    """Run the API and the rolling-horizon scheduler in one process (uvicorn)."""
    from api.app import create_app
    from api.serving import run_server
    from api.settings import load_settings  # the settings, the store and uvicorn load when a command runs

    try:
        settings = load_settings(env_file)
    except InputErrors as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if no_scheduler:
        settings.scheduler_enabled = False
    if scheduler is not None:
        settings.dask_scheduler = scheduler
    if dask_workers is not None:
        settings.dask_workers = dask_workers
    run_server(create_app(settings), host or settings.host, port or settings.port)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="operator, manager, planner, ingest or admin.")],
    site: Annotated[list[str], typer.Option(help="Site id the key may use (repeat; '*' for all).")],
    label: Annotated[str, typer.Option(help="Who or what holds the key.")] = "",
    db: DbOption = None,
) -> None:
    """Create a key and print it once (only its salted hash is stored)."""
    engine = _store(db)
    try:
        from grid.store.apikeys import create_key

        key, token = create_key(engine, role, site, label)
    except InputError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    err_console.print(
        f"key {key.key_id} ({key.role.value}, sites {', '.join(key.sites)}); store it now, it is not shown again:"
    )
    print(token)


@keys_app.command("list")
def keys_list(db: DbOption = None) -> None:
    """List keys (ids, roles, sites; never the secrets)."""
    engine = _store(db)
    table = Table("key_id", "role", "sites", "label", "created", "revoked")
    from grid.store.apikeys import list_keys

    for k in list_keys(engine):
        table.add_row(
            k.key_id,
            k.role.value,
            ",".join(k.sites),
            k.label,
            k.created_at.isoformat(),
            k.revoked_at.isoformat() if k.revoked_at else "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (from `grid keys list`).")], db: DbOption = None
) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    engine = _store(db)
    from grid.store.apikeys import revoke_key

    if not revoke_key(engine, key_id):
        err_console.print(f"[bold red]error:[/] no active key {key_id!r}")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


def _store(db: str | None) -> Engine:
    """The store at `db` (default: the settings'), migrated; loaded only when a key command runs
    (``grid --help`` stays light)."""
    from grid.store.engine import make_engine
    from grid.store.migrate import upgrade

    engine = make_engine(db)
    upgrade(engine)
    return engine
