"""The `landflow` command: run the processes, rebuild the registry, the auditors' tools.

Typer (on Click) gives typed options, `--help` on every command and shell completion
without hand-written argument parsing. Each command imports the stack it runs inside
its body, so `landflow audit ...` does not load uvicorn and `landflow api` no worker.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Annotated, Any

import typer

from audit.cli import audit_app
from landflow.settings import get_settings


class _Landflow(typer.Typer):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command, then leave without interpreter finalisation: the Temporal core
        bridge can crash there (sdk-python#300, "PyGILState_Release") and turn an exit
        status of 0 or 1 into 134, which scripts read as the wrong verdict (CI runs
        `landflow audit replay`). Typer's test runner does not come through here."""
        try:
            super().__call__(*args, **kwargs)
            code = 0
        except SystemExit as exc:
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_on_uvloop(main: Coroutine[Any, Any, None]) -> None:
    """The event loop in C where uvloop installs (not on Windows), asyncio's own otherwise."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


app = _Landflow(help="landflow: land-use change approval on Temporal.", no_args_is_help=True)
app.add_typer(audit_app, name="audit", help="Export, replay, read and verify parcel histories.")
registry_app = typer.Typer(
    help="The registry: rebuild it from the engine, verify it.", no_args_is_help=True
)
app.add_typer(registry_app, name="registry")


@app.command()
def worker() -> None:
    """Run a worker: the parcel workflows and their activities."""
    from service.logs import setup_logging
    from service.worker import run_worker

    setup_logging()
    # uvloop, as the API: the worker's loop carries every activity, every bridge
    # callback and every thread hop (workflow activations run in a thread pool).
    run_on_uvloop(run_worker(get_settings()))


@app.command()
def api(host: str = "127.0.0.1", port: int | None = None) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from service.logs import setup_logging

    setup_logging()
    settings = get_settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port or settings.api_port,
        log_config=None,
        # h11 reads headers up to this many bytes; the app answers 431 above
        # LANDFLOW_MAX_HEADER_BYTES, instead of h11 resetting the connection.
        http="h11",
        h11_max_incomplete_event_size=1_048_576,
        # uvloop: the event loop in C, cheaper per request than asyncio's own.
        loop="uvloop",
    )


@app.command()
def migrate() -> None:
    """Bring the registry database (LANDFLOW_DATABASE_URL) to the latest migration."""
    from registry.migrate import migrate as upgrade_head
    from service.logs import setup_logging

    setup_logging()
    upgrade_head(get_settings().database_url)


@app.command()
def dev() -> None:
    """What `make run` runs: dev server, worker, API and a demo parcel, supervised."""
    from service.devrun import main

    raise typer.Exit(main(get_settings()))


@app.command()
def stop() -> None:
    """Stop what an earlier `make run` left running (its supervisor and children)."""
    from service.devrun import stop_leftovers

    stopped = stop_leftovers(get_settings())
    typer.echo(
        f"stopped {len(stopped)} process(es): {stopped}" if stopped else "nothing was running"
    )


@registry_app.command("rebuild")
def registry_rebuild(
    wait: Annotated[bool, typer.Option(help="wait for the rebuild and print its summary")] = True,
) -> None:
    """Rebuild every registry row from the engine (through the worker: the registry is
    written only by activities). Idempotent; hand edits are overwritten."""
    from service.registry_cli import rebuild

    raise typer.Exit(asyncio.run(rebuild(get_settings(), wait)))


@registry_app.command("verify")
def registry_verify() -> None:
    """Print every registry row that disagrees with the engine; exit 1 if any does."""
    from service.registry_cli import verify

    raise typer.Exit(asyncio.run(verify(get_settings())))


if __name__ == "__main__":
    app()
