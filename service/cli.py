"""The `landflow` command: run the processes, and the auditors' tools.

Typer (on Click) gives typed options, `--help` on every command and shell completion
without hand-written argument parsing.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import typer

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


app = _Landflow(help="landflow: land-use change approval on Temporal.", no_args_is_help=True)


@app.command()
def worker() -> None:
    """Run a worker: the parcel workflow and its activities."""
    from landflow.logs import setup_logging
    from landflow.worker import run_worker

    setup_logging()
    asyncio.run(run_worker(get_settings()))


@app.command()
def api(host: str = "127.0.0.1", port: int | None = None) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    from landflow.logs import setup_logging

    setup_logging()
    settings = get_settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port or settings.api_port,
        log_config=None,
    )


@app.command()
def migrate() -> None:
    """Bring the registry database (LANDFLOW_DATABASE_URL) to the latest migration."""
    from landflow.logs import setup_logging
    from landflow.migrate import migrate as upgrade_head

    setup_logging()
    upgrade_head(get_settings().database_url)


@app.command()
def dev() -> None:
    """What `make run` runs: dev server, worker, API and a demo parcel, supervised."""
    from landflow.devrun import main

    main(get_settings())


def _add_audit() -> None:
    try:
        from landflow.audit_cli import audit_app
    except ImportError:  # the auditors' commands are optional until they land
        return
    app.add_typer(audit_app, name="audit", help="Export, replay and read parcel histories.")


_add_audit()

if __name__ == "__main__":
    app()
