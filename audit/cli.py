"""`landflow audit ...`: export a parcel's history, replay histories, print a trail.

`replay --file` and `trail --file` need nothing but the file: no server, no registry.
Exit codes: 0 done (and deterministic), 1 a history does not replay or the server
refused, 2 bad usage or a file that is not a history.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from audit import render
from audit import replay as replaying
from audit import trail as trails
from audit.verify import verify
from documents import open_store
from landflow.messages import PARCEL_WORKFLOWS
from landflow.settings import get_settings
from registry.rebuild import parcel_ids
from workflows import history as audit_history
from workflows.client import connect

audit_app = typer.Typer(
    help="Export, replay and read parcel histories (the auditors' tools).",
    no_args_is_help=True,
)

FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file", exists=True, dir_okay=False, readable=True, help="An exported history (JSON)."
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _load(file: Path) -> audit_history.ParcelHistory:
    try:
        return audit_history.ParcelHistory.from_json(file.read_bytes())
    except audit_history.HistoryFormatError as exc:
        raise _fail(f"{file}: {exc}", 2) from None


async def _client() -> Client:
    settings = get_settings()
    try:
        return await asyncio.wait_for(connect(settings), timeout=settings.action_timeout_s)
    except (TimeoutError, RuntimeError, OSError) as exc:
        raise _fail(f"cannot reach Temporal at {settings.temporal_address}: {exc}") from None


@audit_app.command()
def export(
    parcel: Annotated[str, typer.Option("--parcel", help="The parcel id (not parcel-...).")],
    out: Annotated[
        Path | None, typer.Option("--out", dir_okay=False, help="Write here, not to stdout.")
    ] = None,
) -> None:
    """Fetch every run of parcel-ID from the server (LANDFLOW_* settings) as canonical JSON."""
    if not audit_history.is_parcel_id(parcel):
        raise typer.BadParameter(f"{parcel!r} is not a parcel id", param_hint="--parcel")

    async def fetch() -> audit_history.ParcelHistory:
        client = await _client()
        try:
            return await audit_history.fetch_history(client, parcel)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise _fail(f"parcel {parcel} not found") from None
            raise _fail(f"the server refused: {exc.message}") from None

    history = asyncio.run(fetch())
    data = history.canonical()
    if out is None:
        typer.echo(data, nl=False)
        return
    out.write_bytes(data)
    typer.echo(f"wrote {out}: {len(history.events)} events, sha256 {history.sha256()}", err=True)


@audit_app.command()
def replay(
    file: FileOption = None,
    workflow_id: Annotated[
        str | None,
        typer.Option("--workflow-id", help="parcel-ID; read from the history when left out."),
    ] = None,
    all_parcels: Annotated[
        bool, typer.Option("--all", help="Replay every parcel workflow on the server.")
    ] = False,
    query: Annotated[
        str | None, typer.Option("--query", help="With --all: a visibility query to narrow it.")
    ] = None,
) -> None:
    """Replay histories against this build's workflow code (offline with --file)."""
    if (file is None) == (not all_parcels):
        raise typer.BadParameter("give either --file FILE or --all")
    if query and not all_parcels:
        raise typer.BadParameter("--query goes with --all", param_hint="--query")
    if file is not None:
        _replay_file(file, workflow_id)
    else:
        _replay_all(query)


def _replay_file(file: Path, wid: str | None) -> None:
    history = _load(file)
    try:
        wid = wid or history.workflow_id()
    except audit_history.HistoryFormatError as exc:
        raise _fail(f"{file}: {exc}; pass --workflow-id", 2) from None
    verdict = asyncio.run(replaying.replay(history, wid))
    if not verdict.deterministic:
        raise _fail(f"{wid}: does NOT replay at event {verdict.event_id}: {verdict.error}")
    runs = len(history.runs())
    typer.echo(f"{wid}: replays deterministically ({len(history.events)} events, {runs} run(s))")


def _replay_all(query: str | None) -> None:
    types = ", ".join(f'"{t}"' for t in PARCEL_WORKFLOWS)
    visibility_query = f"WorkflowType IN ({types})"
    if query:
        visibility_query += f" AND ({query})"

    async def replay_all() -> tuple[int, list[str]]:
        client = await _client()
        replayed, failures = 0, []
        with replaying.HistoryReplayer() as replayer:
            try:
                async for execution in client.list_workflows(visibility_query):
                    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
                    history = audit_history.ParcelHistory((await handle.fetch_history()).events)
                    verdict = await replayer.replay(history, execution.id)
                    replayed += 1
                    if not verdict.deterministic:
                        failures.append(
                            f"{execution.id.removeprefix('parcel-')} (run {execution.run_id}): "
                            f"event {verdict.event_id}: {verdict.error}"
                        )
            except RPCError as exc:
                raise _fail(f"the server refused: {exc.message}") from None
        return replayed, failures

    replayed, failures = asyncio.run(replay_all())
    typer.echo(f"replayed {replayed}, failed {len(failures)}")
    for failure in failures:
        typer.echo(f"FAILED {failure}")
    if failures:
        raise typer.Exit(1)


@audit_app.command()
def trail(
    file: Annotated[
        Path,
        typer.Option(
            "--file", exists=True, dir_okay=False, readable=True, help="An exported history."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the trail as JSON.")] = False,
) -> None:
    """Print the decision trail read from an exported history alone."""
    history = _load(file)
    try:
        built = trails.build_trail(history)
    except audit_history.HistoryFormatError as exc:
        raise _fail(f"{file}: {exc}", 2) from None
    if as_json:
        typer.echo(built.model_dump_json(indent=2))
    else:
        typer.echo(render.render_text(built), nl=False)


@audit_app.command("verify")
def verify_documents(
    parcel: Annotated[str | None, typer.Option("--parcel", help="The parcel id.")] = None,
    all_parcels: Annotated[bool, typer.Option("--all", help="Every parcel on the server.")] = False,
    file: FileOption = None,
) -> None:
    """Re-hash every document the history cites; name any that is missing or changed.
    Exit 0 when all are as reviewed, 1 otherwise."""
    if sum(bool(x) for x in (parcel, all_parcels, file)) != 1:
        raise typer.BadParameter("give one of --parcel ID, --all or --file FILE")
    settings = get_settings()
    store = open_store(
        settings.documents_location, endpoint_url=settings.documents_endpoint or None
    )

    async def histories() -> list[audit_history.ParcelHistory]:
        if file is not None:
            return [_load(file)]
        client = await _client()
        ids = [parcel] if parcel else await parcel_ids(client)
        return [await audit_history.fetch_history(client, p) for p in ids if p]

    checked, problems = 0, 0
    for history in asyncio.run(histories()):
        count, findings = verify(history, store)
        checked += count
        for finding in findings:
            problems += 1
            typer.echo(f"{history.workflow_id()}: {finding}")
    typer.echo(f"{checked} cited documents checked, {problems} missing or changed")
    if problems:
        raise typer.Exit(1)
