"""The ``poncho-replay`` command: a thin layer over the library.

Each command parses its options, makes one library call and renders the
result with rich (tables in :mod:`poncho_replay.cli_render`). Results go to
stdout; progress bars and notes go to stderr, and ``--quiet`` silences them.
A failure is one line on stderr, ``error: <what is wrong> <what to do>``,
with exit status 2; ``--debug`` prints the traceback first.
``audit --fail-on-divergence`` exits 1 when a conversation diverges (a
finding, not an error), like ``diff``.

Without ``--db`` (and without a SOURCE), commands read the bundled harness
0.58.0 sample, so every command can be tried on a fresh install.
"""

from __future__ import annotations

import shutil
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click
import duckdb
from rich.console import Console

import poncho_replay
from poncho_replay import cli_render
from poncho_replay._js import printed
from poncho_replay.audit import COMPARISONS
from poncho_replay.bundled import sample_db
from poncho_replay.display.text import conversation_text, state_text
from poncho_replay.display.views import ConversationView
from poncho_replay.errors import BadEntryError, ReplayError, SourceError
from poncho_replay.policy import PolicyError, resolve_policy
from poncho_replay.profiling import profiling
from poncho_replay.shards import shard_folders
from poncho_replay.sources.ingest import LoadSummary, progress_bar
from poncho_replay.sources.postgres import is_postgres_url, redact_url
from poncho_replay.workspace import Workspace

__all__ = ["cli", "main"]

EXIT_ERROR = 2
"""Exit status of every failure (bad input, unreadable source, usage error)."""
EXIT_DIVERGED = 1
"""Exit status of ``audit --fail-on-divergence`` when some conversation diverges."""
WIDE = 200
"""Table width when stdout is not a terminal (pipes, files, CI logs): wide enough for ids."""

F = TypeVar("F", bound=Callable[..., Any])


def _policy(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Check a --policy value now, so a bad release is a usage error naming the fix."""
    try:
        resolve_policy(value)
    except PolicyError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


ProfileOption = click.option(
    "--profile", is_flag=True, help="Print each phase's time and memory (resident, peak) to stderr."
)

PolicyOption = click.option(
    "--policy", default="0.58", show_default=True, callback=_policy, metavar="RELEASE",
    help="The harness release whose reads get() reproduces: 0.58 (full cutover), 0.59.0-0.59.2 "
    "(pending results from all entries), 0.59.3 ... 0.61.2 or current (pending results from "
    "the queue entries), blob (no cutover, up to 0.57).",
)  # fmt: skip


class _PrintedStream:
    """stdout or stderr as Node writes to it: a lone surrogate in data is printed as U+FFFD (SPEC §9).

    Titles and texts are JavaScript strings and may hold half an emoji; a
    strict UTF-8 stream would raise on it mid-table. Everything else is the
    wrapped stream's (``isatty``, ``encoding``, ``flush``).
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(printed(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _console(stderr: bool = False) -> Console:
    """A console that prints data literally: no markup, emoji codes or highlighting in titles and texts."""
    stream = _PrintedStream(sys.stderr if stderr else sys.stdout)
    plain = {"file": stream, "highlight": False, "markup": False, "emoji": False}
    console = Console(**plain)  # type: ignore[arg-type]
    if not console.is_terminal:
        console = Console(**plain, width=max(console.width, WIDE))  # type: ignore[arg-type]
    return console


class CliError(click.ClickException):
    """A failure the user can act on: printed as one line, exit status 2."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        text = " ".join(message.split())
        text += "" if text.endswith((".", "?", "!")) else "."
        super().__init__(f"{text} {hint[:1].upper()}{hint[1:]}." if hint else text)

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {printed(self.message)}", err=True)


def _as_cli_error(exc: BaseException) -> CliError:
    """Any exception a command let through, as one actionable line."""
    if isinstance(exc, ReplayError):
        return CliError(str(exc), "rerun with --debug for details")
    if isinstance(exc, ImportError):
        return CliError(str(exc), "install the extra it names")
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return CliError(f"{exc.strerror or exc}:{where}", "check the path and its permissions")
    if isinstance(exc, duckdb.Error):
        return CliError(f"DuckDB: {exc}", "rerun with --debug for the traceback")
    return CliError(
        f"unexpected {type(exc).__name__}: {exc}",
        "rerun with --debug for the traceback and report it",
    )


class _Group(click.Group):
    """Turns whatever a command raises into one line; ``--debug`` shows the traceback too."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.UsageError):
            raise
        except Exception as exc:
            if ctx.meta.get("debug"):
                traceback.print_exception(exc)
            if isinstance(exc, click.ClickException):
                raise
            raise _as_cli_error(exc) from exc


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def remember(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        # ctx.meta is shared by the group and the command: an unset flag or option
        # on one must not undo the value given on the other
        if value is not None and value is not False:
            ctx.meta[key] = value

    return remember


def _common(fn: F) -> F:
    """``--quiet``, ``--debug`` and ``--memory-limit``, accepted before or after the command name."""
    fn = click.option(
        "--memory-limit", expose_value=False, callback=_remember("memory_limit"),
        help="Cap DuckDB's memory (e.g. 8GB); it spills to disk past it. For fleets larger than memory.",
    )(fn)  # fmt: skip
    fn = click.option(
        "--quiet", "-q", is_flag=True, expose_value=False, callback=_remember("quiet"),
        help="No progress bars or notes on stderr; results still print.",
    )(fn)  # fmt: skip
    return click.option(
        "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_remember("debug"),
        help="Print the traceback of an error before its one-line message.",
    )(fn)  # fmt: skip


def _open(path: str | Path = ":memory:") -> Workspace:
    """A workspace with the --memory-limit given (DuckDB spills next to a file workspace)."""
    return poncho_replay.open(path, memory_limit=click.get_current_context().meta.get("memory_limit"))


def _quiet() -> bool:
    return bool(click.get_current_context().meta.get("quiet"))


def _note(message: str) -> None:
    """A remark on stderr (silenced by --quiet)."""
    if not _quiet():
        _console(stderr=True).print(message)


@contextmanager
def _step(description: str) -> Iterator[None]:
    """A spinner on stderr for a long step with no natural count (terminal only, not --quiet)."""
    err = _console(stderr=True)
    with err.status(description) if err.is_terminal and not _quiet() else nullcontext():
        yield


def _load_progress() -> bool | None:
    """``Workspace.load``'s ``progress``: off under --quiet, else the library's default (terminal only)."""
    return False if _quiet() else None


# --- workspaces and sources ---------------------------------------------------------------

DB_HELP = (
    "The DuckDB workspace file (written by `poncho-replay load`); default: the bundled sample."
)
DbOption = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help=DB_HELP)
AllOption = click.option(
    "--all", "show_all", is_flag=True,
    help="List every conversation in the table (by default the most diverged first, a screenful).",
)  # fmt: skip


def _source_hint(source: str) -> str:
    """What to do when ``source`` could not be read, from what the user passed."""
    if is_postgres_url(source):
        return "check that the server is running and that the URL's host, port, user and database are right"
    path = Path(source)
    if not path.exists():
        return "check the path: SOURCE is a harness SQLite file, a postgresql:// URL or an export folder"
    if path.is_dir():
        return (
            "the export folder is damaged or incomplete: write it again with `poncho-replay export`"
        )
    return "pass the harness's own SQLite database (the file with the conversations and conversation_entries tables)"


SQLITE_MAGIC = b"SQLite format 3\x00"


def _connect(db: Path) -> Workspace:
    if db.is_file():
        with db.open("rb") as fh:
            if fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
                raise CliError(
                    f"{db} is a SQLite file, not a DuckDB workspace",
                    f"load it as a SOURCE: poncho-replay load {db} --db work.duckdb",
                )
    try:
        return _open(db)
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(
            f"cannot open {db} as a DuckDB workspace ({first})",
            f"pass the file `poncho-replay load` wrote; a harness SQLite file is a SOURCE: "
            f"poncho-replay load {db} --db work.duckdb",
        ) from exc


REPLACED = "An existing file there is replaced (a note on stderr says so)."
"""The --help wording for outputs meant for reading (HTML, PNG, SVG): DESIGN's overwrite rule.
Data (a database, an export folder) is refused unless --force instead: see :func:`_data_target`."""


def _output(path: Path) -> Path:
    """An output meant for reading (HTML, PNG, SVG): replaced if it exists, with a note; its folder created.

    DESIGN's one rule for files the kit writes: such outputs are cheap to
    write again, so they are replaced and the user is told; data (a
    database, an export folder) is refused instead, see :func:`_data_target`.
    """
    if path.is_dir():
        raise CliError(f"{path} is a folder", "give a file name")
    if path.exists():
        _note(f"replacing {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _data_target(path: Path, force: bool, what: str) -> None:
    """Refuse to write data over ``path`` unless ``--force`` (DESIGN: data is never replaced silently)."""
    if force or not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    raise CliError(f"{what} {path} already exists", "choose another path, or pass --force to replace it")


def _load(
    ws: Workspace,
    source: str | Path,
    *,
    name: str | None = None,
    agent_id: str | None = None,
    strict: bool = False,
) -> LoadSummary:
    """``ws.load`` with the CLI's hints on failure and a note about quarantined rows."""
    try:
        summary = ws.load(
            source, name=name, agent_id=agent_id, strict=strict, progress=_load_progress()
        )
    except BadEntryError as exc:
        raise CliError(
            str(exc),
            "fix that row, or load without --strict to quarantine bad rows and keep the rest",
        ) from exc
    except SourceError as exc:
        raise CliError(str(exc), _source_hint(str(source))) from exc
    _note_quarantined(summary, "kept in the quarantine table")
    return summary


def _note_quarantined(summary: LoadSummary, where: str) -> None:
    if summary.quarantined:
        reasons = ", ".join(f"{n} {reason}" for reason, n in summary.quarantined.items())
        _note(f"warning: rows quarantined from {summary.source}: {reasons} ({where})")


def _load_into(db: Path, source: str, **load_options: Any) -> tuple[Workspace, LoadSummary]:
    """Load ``source`` into the workspace file ``db``; a file this call created is removed if the load fails."""
    created = not db.exists()
    ws = _connect(db)
    try:
        return ws, _load(ws, source, **load_options)
    except BaseException:
        if created:  # leave no empty workspace behind to be mistaken for a loaded one
            ws.con.close()
            for leftover in (db, db.with_name(db.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise


def _workspace(db: Path | None, source: str | None = None) -> Workspace:
    """The workspace a command works on: ``--db``, then SOURCE loaded into it; else the bundled sample."""
    if db is not None and source is not None:
        return _load_into(db, source)[0]
    if db is not None:
        if not db.exists():
            raise CliError(
                f"no workspace at {db}", f"create it first: poncho-replay load SOURCE --db {db}"
            )
        return _connect(db)
    ws = _open()
    if source is not None:
        _load(ws, source)
    else:
        _note("no --db given: using the bundled harness 0.58.0 sample")
        _load(ws, sample_db(), name="sample")
    return ws


def _conversation(
    ws: Workspace, conversation_id: str, policy: str, source: str | None
) -> ConversationView:
    try:
        view = ws.conversation(conversation_id, source=source, policy=policy)  # type: ignore[arg-type]
    except SourceError as exc:
        raise CliError(
            str(exc), "list the conversation ids with `poncho-replay audit` (same --db)"
        ) from exc
    if view.problem is not None:
        raise CliError(
            f"conversation {conversation_id} could not be shown: {view.problem}",
            "the audit still covers it: `poncho-replay audit` (same --db)",
        )
    return view


# --- commands ------------------------------------------------------------------------------


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@_common
def cli() -> None:
    """Load, rebuild, audit and replay poncho harness conversation storage.

    \b
    Example: poncho-replay demo
    """


@cli.command()
@click.argument("source")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The DuckDB workspace file to load into: created if missing, else the source is "
              "added to it (its earlier rows from the same source replaced); the file itself is never "
              "replaced.")  # fmt: skip
@click.option(
    "--name", help="Label for these rows (default: the resolved path, or the URL without password)."
)
@click.option("--agent-id", help="Keep only this agent's conversations (databases only).")
@click.option(
    "--strict", is_flag=True, help="Stop at the first bad row instead of quarantining it."
)
@ProfileOption
@_common
def load(
    source: str, db: Path, name: str | None, agent_id: str | None, strict: bool, profile: bool
) -> None:
    """Load a harness database or export into a workspace file.

    SOURCE is a harness SQLite file, a postgresql:// URL, or an export folder
    (JSONL or Parquet). The source is opened read-only; loading it again
    replaces its rows.

    \b
    Example: poncho-replay load ~/.poncho/poncho.db --db work.duckdb
    """
    with profiling(profile):
        summary = _load_into(db, source, name=name, agent_id=agent_id, strict=strict)[1]
    _console().print(cli_render.load_table(summary))
    _note(f"workspace: {db}")


@cli.command()
@click.argument("source", required=False)
@DbOption
@PolicyOption
@click.option("--compare", type=click.Choice(COMPARISONS), default="exact", show_default=True,
              help="exact: JSON values; text: the harness's role:text projection.")  # fmt: skip
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Also write the self-contained HTML report here. {REPLACED}")  # fmt: skip
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the audit as JSON instead of tables: every column of every conversation, never capped.",
)
@AllOption
@click.option(
    "--fail-on-divergence", is_flag=True, help="Exit with status 1 when a conversation diverges."
)
@click.option("--shards", type=click.IntRange(min=1), default=None,
              help="Audit by this many shards of conversations (default: one per 250,000 entries); "
              "same rows, a smaller working set.")  # fmt: skip
@click.option("--dask", "dask_address", metavar="local:N|tcp://HOST:PORT",
              help="Audit a sharded export (SOURCE, from `export --format parquet --shards N`) on Dask: "
              "local:N starts N worker processes, tcp://... uses a running scheduler.")  # fmt: skip
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="A SQLite file or PostgreSQL database audited by shards as it is read: audit this many shards at once, "
              "in worker processes (memory: one shard each).")  # fmt: skip
@ProfileOption
@_common
def audit(
    source: str | None, db: Path | None, policy: str, compare: str, html_path: Path | None,
    as_json: bool, show_all: bool, fail_on_divergence: bool, shards: int | None, dask_address: str | None,
    jobs: int, profile: bool,
) -> None:  # fmt: skip
    """Parity audit: what a policy serves vs the blob, and why.

    One row per conversation: its verdict, the seq where each field starts
    to differ, the harness's own parity verdict, and the causes. The table
    lists the most diverged conversations first and stops after a screenful
    (--all lists every one; --json is always complete).

    SOURCE (a harness SQLite file, postgresql:// URL or export folder) is
    loaded first, into --db when given; without SOURCE the audit reads --db,
    or the bundled sample.

    A harness SQLite file or PostgreSQL database of more than one shard
    (250,000 entries each by default, or --shards N) is read once (one
    snapshot) into shard files on disk and loaded and audited shard by
    shard (memory of one shard, whatever its size), unless --db or --html
    keep the loaded workspace.

    A sharded export (SOURCE/shard=K/) is audited shard by shard straight
    from its files (memory of one shard), or with --dask as one Dask task
    per shard; shards that fail twice there are named and left out.

    \b
    Example: poncho-replay audit ~/.poncho/poncho.db --html report.html --fail-on-divergence
    Example: poncho-replay audit sharded/ --dask local:4
    """
    sharded = source is not None and not is_postgres_url(source) and bool(shard_folders(Path(source)))
    if dask_address is not None and not sharded:
        raise CliError("--dask audits a sharded export folder",
                       "write one with `poncho-replay export --format parquet --shards N OUT` and audit OUT")  # fmt: skip
    with profiling(profile):
        if sharded and db is None and html_path is None:
            ws = None
            report = _audit_sharded_export(Path(source), dask_address, policy, compare)  # type: ignore[arg-type]
        elif db is None and html_path is None and source is not None and (rows := _stream_rows(source, shards)):
            ws = None
            report = _audit_streamed(source, rows, policy, compare, shards, jobs)
        else:
            ws = _workspace(db, source)
            with _step(f"auditing under policy {policy}"):
                report = ws.parity(policy, compare, shards=shards)  # type: ignore[arg-type]
    if as_json:
        for piece in cli_render.parity_json(report, policy, compare):
            click.echo(piece, nl=False)
        click.echo()
    else:
        out = _console()
        out.print(cli_render.headline(report, policy))
        out.print(cli_render.summary_table(report.summary()))
        out.print(cli_render.parity_table(report, limit=None if show_all else cli_render.TABLE_ROWS))
    if html_path is not None and ws is not None:
        with _step("writing the HTML report"):
            written = ws.report(_output(html_path), policy, parity=report)  # type: ignore[arg-type]
        _note(f"report written to {Path(written).resolve()}")
    diverged = int((report["verdict"] == "diverged").sum())
    if fail_on_divergence and diverged:
        _note(f"{diverged} conversation(s) diverged under policy {policy} (--fail-on-divergence)")
        click.get_current_context().exit(EXIT_DIVERGED)


def _stream_rows(source: str, shards: int | None) -> int | None:
    """The rows of ``source`` when ``audit SOURCE`` reads it shard by shard (:mod:`poncho_replay.streamed`), else None.

    A harness SQLite file or PostgreSQL database that would be audited in
    more than one shard anyway, when nothing needs the loaded workspace
    afterwards (no --db, no --html): its size then never decides the memory.
    """
    from poncho_replay.shards import default_shards
    from poncho_replay.sources.databases import source_rows
    from poncho_replay.workspace import detect_kind

    try:
        if detect_kind(source) not in ("sqlite", "postgres"):
            return None
    except SourceError:
        return None  # the load reports it, with its hint
    rows = source_rows(source)
    if rows is None:
        return None  # unreadable: the load reports why, with its hint
    return rows if (shards if shards is not None else default_shards(rows)) > 1 else None


def _audit_streamed(source: str, rows: int, policy: str, compare: str, shards: int | None, jobs: int) -> Any:
    """The audit of a big harness database: read once into shard spools, then load and audit shard by shard."""
    import tempfile

    from poncho_replay.shards import default_shards
    from poncho_replay.streamed import audit_spool, spool_source

    label = redact_url(source) if is_postgres_url(source) else source
    with tempfile.TemporaryDirectory(prefix="poncho-spool-") as folder:
        try:
            with progress_bar(_load_progress(), rows, f"reading {label} by shard") as advance:
                spool = spool_source(source, folder, shards=shards if shards is not None else default_shards(rows), advance=advance)
        except SourceError as exc:
            raise CliError(str(exc), _source_hint(source)) from exc
        with progress_bar(_load_progress(), spool.shards, f"loading and auditing {spool.shards} shards") as advance:
            report, summary = audit_spool(spool, policy, compare, jobs=jobs, on_shard=lambda done, total: advance(1))  # type: ignore[arg-type]
    _note_quarantined(summary, "counted here; `poncho-replay load` keeps them in the quarantine table")
    return report


def _audit_sharded_export(path: Path, dask_address: str | None, policy: str, compare: str) -> Any:
    """The audit of a sharded export, shard by shard here or as Dask tasks; failed shards noted on stderr."""
    from poncho_replay import distributed

    total = len(shard_folders(path))
    with progress_bar(_load_progress(), total, f"auditing {total} shards") as advance:
        if dask_address is None:
            report = distributed.parity(path, None, policy, compare, on_shard=lambda d, t: advance(1))
        else:
            client = distributed.connect(dask_address)
            try:
                report = distributed.parity(path, client, policy, compare, on_shard=lambda d, t: advance(1))
            finally:
                cluster = getattr(client, "cluster", None)
                client.close()
                if cluster is not None:
                    cluster.close()
    for shard, error in report.attrs.get("incomplete", {}).items():
        _note(f"{shard} failed twice and is left out (the audit is incomplete): {error}")
    return report


@cli.command()
@click.argument("conversation_id")
@click.option(
    "--at", "seq", type=click.IntRange(min=0), help="Replay: the state the log gives at this seq."
)
@DbOption
@PolicyOption
@click.option("--source", help="Which loaded source, when the id is in several.")
@_common
def show(
    conversation_id: str, seq: int | None, db: Path | None, policy: str, source: str | None
) -> None:
    """One conversation as text: its log and how it diverges.

    Prints the entry log and the aligned items where the served transcript
    differs from the blob.

    With --at SEQ: the LLM context, display transcript and pending results
    the log gives at that seq (entries with seq <= SEQ).

    \b
    Example: poncho-replay show 31032086-b3c1-43bb-9789-0d94ae2d096f --at 14
    """
    view = _conversation(_workspace(db), conversation_id, policy, source)
    out = _console()
    if seq is None:
        out.print(conversation_text(view.blob, view.entries))
        out.print(cli_render.diff_table(view.diff(policy)))  # type: ignore[arg-type]
        return
    last = max(view.seqs, default=0)
    if seq > last:
        _note(f"seq {seq} is past the last entry (seq {last}): showing the whole log")
    state = view.at(seq).state
    out.print(state_text(state))
    out.print(cli_render.messages_table("LLM context", state.llm_context))
    out.print(cli_render.messages_table("Display transcript", state.display.messages))
    out.print(cli_render.pending_table(state))


@cli.command()
@click.argument("conversation_id")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help=f"Where to write the chart (.png; .svg and .html work too). {REPLACED}")  # fmt: skip
@DbOption
@click.option("--source", help="Which loaded source, when the id is in several.")
@_common
def compaction(conversation_id: str, png: Path, db: Path | None, source: str | None) -> None:
    """Draw a conversation's compaction timeline to a PNG.

    The chart shows what each compaction summarized and kept (the logged
    firstKeptSeq against the blob's real kept messages).

    \b
    Example: poncho-replay compaction 31032086-b3c1-43bb-9789-0d94ae2d096f --png compaction.png
    """
    from poncho_replay.display.charts import save_chart

    view = _conversation(_workspace(db), conversation_id, "0.58", source)
    if not any(e.get("type") == "compaction" for e in view.entries):
        _note("this log has no compaction entry: the chart shows its messages only")
    with _step("rendering the chart"):
        written = save_chart(view.compaction_chart(), _output(png))
    _console().print(f"wrote {written}")


@cli.command()
@click.argument("out", type=click.Path(path_type=Path))
@DbOption
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet", "inspect"]), default="jsonl", show_default=True,
              help="jsonl: one JSON object per line; parquet: typed columns; inspect: an Inspect AI "
              "dataset file (OUT.jsonl), one sample per user turn.")  # fmt: skip
@PolicyOption
@click.option("--system", default=None, help="inspect only: the system prompt to put first (the harness "
              "stores none; without it the samples say so).")  # fmt: skip
@click.option("--source", help="Which loaded source to export, when the workspace holds several.")
@click.option("--force", is_flag=True, help="Replace the export files in OUT when it exists and is "
              "not empty; without it such an OUT is refused.")  # fmt: skip
@click.option("--shards", type=click.IntRange(min=1), default=None,
              help="Parquet only: one export folder per shard of conversations (OUT/shard=K/), for "
              "`audit OUT --dask ...`; OUT still loads as one export.")  # fmt: skip
@_common
def export(
    out: Path, db: Path | None, fmt: str, policy: str, system: str | None, source: str | None, force: bool,
    shards: int | None,
) -> None:
    """Export as JSONL, Parquet or an Inspect AI dataset.

    OUT gets conversations.EXT and entries.EXT (harness columns, SPEC §4);
    the folder loads back with `poncho-replay load OUT`. With --format
    inspect, OUT is one JSONL file of Inspect AI samples: the context the
    harness sent at each user turn's start under --policy, the reply it
    stored as target. An export is data: an OUT that exists and is not
    empty is refused unless --force.

    \b
    Example: poncho-replay export --db work.duckdb --format parquet export/
    Example: poncho-replay export --db work.duckdb --format parquet --shards 16 sharded/
    Example: poncho-replay export --db work.duckdb --format inspect --policy 0.58 turns.jsonl
    """
    if shards is not None and fmt != "parquet":
        raise CliError("--shards writes Parquet", "add --format parquet")
    if fmt == "inspect":
        if out.is_dir():
            raise CliError(f"{out} is a folder; --format inspect writes one file", "name a file such as turns.jsonl")
        _data_target(out, force, "Inspect dataset")
        with _step("building the Inspect samples"):
            written = _workspace(db).to_inspect_dataset(out, policy, system=system)
        _console().print(f"wrote {written}")
        return
    if out.exists() and not out.is_dir():
        raise CliError(f"{out} is a file; --format {fmt} writes a folder", "name a folder")
    _data_target(out, force, "export folder")
    ws = _workspace(db)
    for stale in (out / f"{stem}.{kind}" for stem in ("conversations", "entries") for kind in ("jsonl", "parquet")):
        stale.unlink(missing_ok=True)  # --force: no file of an older export (either format) stays behind
    for stale_shard in shard_folders(out):
        shutil.rmtree(stale_shard)  # nor a shard folder of an older sharded export
    try:
        written = ws.export(out, fmt, source=source, shards=shards)  # type: ignore[arg-type]
    except SourceError as exc:
        raise CliError(str(exc), "choose one with --source NAME") from exc
    if shards is not None:
        _console().print(f"wrote {shards} shard folders (shard=0 ... shard={shards - 1}) in {written}")
        return
    _console().print(
        f"wrote {written / ('conversations.' + fmt)} and {written / ('entries.' + fmt)}"
    )


class FaultsSpec(click.ParamType):
    """``lost=0.02,duplicate=0.01,writeback``: the simulator's :class:`~poncho_replay.simulate.Faults`."""

    name = "FAULTS"
    RATES = ("lost", "fail", "duplicate", "reorder")

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in str(value).split(","))):
            key, _, rate = item.partition("=")
            if key == "writeback" and not rate:
                out["writeback"] = True
            elif key in self.RATES and rate:
                try:
                    out[key] = float(rate)
                except ValueError:
                    self.fail(
                        f"{key}={rate!r}: the rate must be a number between 0 and 1", param, ctx
                    )
                if not 0 <= out[key] <= 1:
                    self.fail(f"{key}={rate}: the rate must be between 0 and 1", param, ctx)
            else:
                self.fail(
                    f"{item!r}: use {'=P, '.join(self.RATES)}=P or writeback, comma-separated",
                    param,
                    ctx,
                )
        return out


def _harness_release(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check a --harness / --upgrade-to value now, so a bad release is a usage error naming the fix."""
    from poncho_replay.simulate.releases import harness_release

    try:
        return None if value is None else harness_release(value).name
    except ValueError as exc:  # PolicyError is a ValueError
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@cli.command()
@click.option("--conversations", "n", type=click.IntRange(min=1), default=100, show_default=True,
              help="How many conversations (about 50 entries each).")  # fmt: skip
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Same seed, same data (faults included)."
)
@click.option("--out", required=True, metavar="FILE|URL",
              help="The harness-layout SQLite file to write, or a postgresql:// URL (JSONB as the harness "
              "writes it: string scalars).")  # fmt: skip
@click.option("--schema", default="poncho_sim", show_default=True,
              help="With a postgresql:// --out: the schema to create the harness tables in.")  # fmt: skip
@click.option(
    "--faults",
    type=FaultsSpec(),
    default="",
    help="Dual-write faults, e.g. lost=0.02,reorder=0.1,writeback.",
)
@click.option("--harness", default="0.58.0", show_default=True, callback=_harness_release, metavar="RELEASE",
              help="The harness release that writes the conversations: 0.56 (blob only), 0.57-0.59.2 "
              "(transcript dual-write), 0.59.3 ... 0.61.2 or current (subagent-result queue only).")  # fmt: skip
@click.option("--upgrade-to", default=None, callback=_harness_release, metavar="RELEASE",
              help="A later release each conversation moves to at a seeded point, e.g. 0.61.2.")  # fmt: skip
@click.option("--timeline", type=click.Choice(["sequential", "dated"]), default="sequential", show_default=True,
              help="sequential: one conversation after another, each moved to --upgrade-to at its own point; "
              "dated: conversations overlap in time and each release is deployed to the whole fleet at one "
              "moment (pre-0.57 first, then --harness, then --upgrade-to).")  # fmt: skip
@click.option("--force", is_flag=True, help="Replace --out (or the PostgreSQL --schema) if it exists; "
              "without it an existing one is refused.")  # fmt: skip
@_common
def simulate(
    n: int, seed: int, out: str, schema: str, faults: dict[str, Any], harness: str, upgrade_to: str | None,
    timeline: str, force: bool,
) -> None:  # fmt: skip
    """Write a simulated harness database to audit.

    A faithful simulation of the harness's writes (0.57/0.58 dual-write by
    default, or any release up to 0.61.x, upgraded mid-way if asked), with
    optional seeded faults, written in the harness's SQLite layout.

    \b
    Example: poncho-replay simulate --conversations 500 --seed 7 --out fleet.sqlite --faults lost=0.02,writeback
    Example: poncho-replay simulate --out mixed.sqlite --harness 0.58.0 --upgrade-to 0.61.2
    Example: poncho-replay simulate --out deployed.sqlite --upgrade-to 0.61.2 --timeline dated
    Example: poncho-replay simulate --out postgresql://postgres@127.0.0.1/test --schema fleet1
    """
    from poncho_replay.simulate import Faults, fleet

    target = None if is_postgres_url(out) else Path(out)
    if target is not None:
        _data_target(target, force, "database")
    with _step(f"simulating {n} conversations"):
        data = fleet(
            n,
            seed=seed,
            faults=Faults(seed=seed, **faults) if faults else None,
            harness=harness,
            upgrade_to=upgrade_to,
            timeline=timeline,  # type: ignore[arg-type]
        )
    if target is None:
        shown = f"{redact_url(out)} schema {schema}"
        with _step(f"writing {shown}"):
            _simulate_to_postgres(data, out, schema, force=force)
        source = _with_search_path(out, schema)
    else:
        target.unlink(missing_ok=True)
        shown = source = str(target)
        with _step(f"writing {target}"):
            data.to_sqlite(target)
    _console().print(
        f"wrote {len(data.conversations)} conversations and {data.entry_count} entries to {shown}"
    )
    _note(f"audit it: poncho-replay audit '{redact_url(source)}'")


def _simulate_to_postgres(data: Any, url: str, schema: str, *, force: bool) -> None:
    """Write a simulated fleet into ``schema`` (created; replaced only with --force, never ``public``)."""
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            exists = conn.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'conversations'",
                (schema,),
            ).fetchone()
            if exists and not force:
                raise CliError(f"schema {schema} already holds harness tables", "pass --force to replace the schema")
            if exists and schema == "public":
                raise CliError("--force will not drop the public schema", "choose another --schema")
            if exists:
                conn.execute(psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(schema)))
                conn.commit()
            data.to_postgres(conn, schema)
    except psycopg.Error as exc:
        raise CliError(f"cannot write to {redact_url(url)}: {exc}".splitlines()[0]) from None


def _with_search_path(url: str, schema: str) -> str:
    """The URL with libpq's ``options=-csearch_path=<schema>``, the way to load a schema."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _repo_fixtures() -> list[Path]:
    """The simulated scenario databases of a source checkout (``fixtures/*/harness.db``); none in a wheel."""
    root = Path(poncho_replay.__file__).resolve().parent.parent / "fixtures"
    return sorted(root.glob("*/harness.db")) if root.is_dir() else []


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help=f"Where to write the HTML report. {REPLACED}")  # fmt: skip
@AllOption
@_common
def demo(out: Path, show_all: bool) -> None:
    """Audit the bundled data and write report.html.

    The main job in one command: load, audit under policy 0.58, print the
    summary and the per-conversation table, write the HTML report.

    Loads the real harness 0.58.0 sample shipped in the package and, in a
    source checkout, the simulated scenario fixtures (fixtures/*/harness.db).

    \b
    Example: poncho-replay demo --out report.html
    """
    ws = _open()
    sources = [
        ("sample", sample_db()),
        *((f"fixtures/{p.parent.name}", p) for p in _repo_fixtures()),
    ]
    for name, path in sources:
        with _step(f"loading {name}"):
            _load(ws, path, name=name)
    _note(f"loaded {len(sources)} source(s): {', '.join(n for n, _ in sources)}")
    with _step("auditing under policy 0.58"):
        report = ws.parity("0.58")
    console = _console()
    console.print(cli_render.headline(report, "0.58"))
    console.print(cli_render.summary_table(report.summary()))
    console.print(cli_render.parity_table(report, limit=None if show_all else cli_render.TABLE_ROWS))
    with _step("writing the HTML report"):
        written = Path(ws.report(_output(out), "0.58", parity=report)).resolve()
    console.print(f"report written to {written}")
    on_sample = report[(report["source"] == "sample") & (report["verdict"] == "diverged")]
    if not on_sample.empty:  # `show` without --db reads the same bundled sample
        _note(f"next: poncho-replay show {on_sample.iloc[0]['conversation_id']}")


_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())
"""click >= 8.2 raises this for a bare group call; older click prints the help and exits itself."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: runs the group, maps every failure to one line and an exit status."""
    try:
        code = cli.main(args=argv, prog_name="poncho-replay", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:  # bare `poncho-replay`: the help, as click itself would
        click.echo(exc.format_message(), err=True)
        sys.exit(EXIT_ERROR)
    except click.UsageError as exc:
        hint = f" Try '{exc.ctx.command_path} --help'." if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message().rstrip('.')}.{hint}", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
