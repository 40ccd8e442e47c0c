"""Command line of the sites stored as data: ``grid sites import FILE`` and ``grid sites list``.

``import`` validates a site YAML and its input files as ``grid plan`` does (exit 2 with the same
messages), then stores the site with its series inline as its next version (nothing when it is
unchanged); the service plans that version from its next run on. Kept light: the store loads when
a command runs.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from grid.errors import InputError, InputErrors

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from grid.store.site_versions import SiteVersion

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Sites stored as data (versioned).")
out_console = Console(soft_wrap=True)  # ids, paths and errors people copy never wrap
err_console = Console(stderr=True, soft_wrap=True)
DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (default: $GRID_DATABASE_URL).")]


def _engine(db: str | None) -> Engine:
    from grid.store.engine import make_engine
    from grid.store.migrate import upgrade

    engine = make_engine(db)
    upgrade(engine)
    return engine


@app.command("import")
def import_command(
    files: Annotated[list[Path], typer.Argument(help="Site YAML file(s); their input files are stored with them.")],
    db: DbOption = None,
) -> None:
    """Store site files and their input series, each as its site's next version (a file that does
    not validate is reported and skipped; exit status 2 if any did not)."""
    import pandas as pd

    from grid.store.site_versions import document_from_file, put_site_version
    from grid.store.sites import register_site

    engine = _engine(db)
    who = f"grid sites import ({getpass.getuser()})"
    failed = 0
    for file in files:
        try:
            document = document_from_file(file)
            row, created = put_site_version(engine, document["site"]["id"], document, who, pd.Timestamp.now("UTC"))
            if created:
                register_site(engine, row.site())
        except (InputError, InputErrors) as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            failed += 1
            continue
        if created:
            out_console.print(f"site {row.site_id}: version {row.version} stored ({row.changes})", highlight=False)
        else:
            out_console.print(f"site {row.site_id}: unchanged, version {row.version} stays current", highlight=False)
    if failed:
        raise typer.Exit(2)


@app.command("list")
def list_command(
    db: DbOption = None,
    retired: Annotated[bool, typer.Option("--retired", help="Show retired sites too.")] = False,
) -> None:
    """The sites stored as data: current version, size, when and by whom, what changed."""
    from grid.store.site_versions import list_sites

    every = list_sites(_engine(db), include_retired=True)
    rows = [r for r in every if retired or not r.retired]
    if not rows:
        hint = f"; {len(every)} retired (--retired lists them)" if every else ""
        out_console.print(f"no sites stored (grid sites import FILE, or PUT /api/v1/sites/{{site}}){hint}")
        return
    out_console.print(sites_table(rows, out_console.width))


def sites_table(rows: list[SiteVersion], width: int) -> Table:
    """The stored sites as a table `width` columns wide: ids, versions, sizes and times whole (never
    wrapped or cut), the change summary cut to what is left."""
    cells = []
    for row in rows:
        stored = row.created_at.strftime("%Y-%m-%d %H:%M") if row.created_at is not None else "-"
        homes = str(len(row.description.get("households") or []))
        cells.append((row.site_id, str(row.version), homes, stored, "retired" if row.retired else row.changes))
    heads = ("site", "v", "homes", "stored (UTC)")
    fixed = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    left = max(10, width - sum(fixed) - 2 * len(heads))
    table = Table(box=None, pad_edge=False, show_edge=False)
    for i, head in enumerate(heads):
        table.add_column(head, no_wrap=True, min_width=fixed[i], justify="right" if i in (1, 2) else "left")
    table.add_column("changes", no_wrap=True, overflow="ellipsis", max_width=left)
    for c in cells:
        table.add_row(*c)
    return table
