"""The researcher's entry point: a DuckDB database with harness data loaded into it.

Example:
    >>> import poncho_replay
    >>> ws = poncho_replay.open()                      # in memory; or a .duckdb path
    >>> summary = ws.load(poncho_replay.bundled.sample_db())  # doctest: +SKIP
    >>> ws.sql("SELECT type, count(*) AS n FROM conversation_entries GROUP BY type")  # doctest: +SKIP
    >>> ws.export("out/", format="parquet")            # doctest: +SKIP

The class stays small on purpose: loading lives in :mod:`poncho_replay.sources`,
rules in SQL files; other features attach here by delegating to their modules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

from poncho_replay import audit, fleet
from poncho_replay.display.frames import compactions_df
from poncho_replay.display.views import ConversationView, nesting_reason
from poncho_replay.errors import BadEntryError, SourceError
from poncho_replay.profiling import phase, profiling
from poncho_replay.rebuild import Policy
from poncho_replay.shards import default_shards, export_shards, parity_by_shards, shard_folders
from poncho_replay.sources import export as export_source
from poncho_replay.sources.databases import source_label
from poncho_replay.sources.ingest import LoadSummary, Stager, ensure_schema, progress_bar
from poncho_replay.sources.postgres import is_postgres_url, read_postgres
from poncho_replay.sources.sqlite import count_rows, read_sqlite
from poncho_replay.sql import CONVERSATION_JSON_COLUMNS
from poncho_replay.store.duckdb import DuckDBStore

__all__ = ["Workspace", "open"]

SourceKind = Literal["sqlite", "postgres", "jsonl", "parquet"]


def open(
    path: str | Path = ":memory:",
    *,
    memory_limit: str | None = None,
    temp_directory: str | Path | None = None,
) -> Workspace:
    """A :class:`Workspace` over the DuckDB database at ``path`` (created if missing).

    For fleets larger than memory (about 10M entries and up), use a file
    ``path`` and a ``memory_limit`` such as ``"8GB"``: DuckDB then spills the
    audit's working tables to ``temp_directory`` (default: next to the file)
    instead of growing past it.
    """
    return Workspace(_connect(path, memory_limit, temp_directory))


def open_for_audit(memory_limit: str | None = None) -> Workspace:
    """An in-memory workspace for one shard of a streamed or distributed audit: loaded once, audited, closed."""
    return Workspace(_connect(":memory:", memory_limit, None))


def _connect(path: str | Path, memory_limit: str | None, temp_directory: str | Path | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    # DuckDB's own progress bar writes to stdout (a Dask worker's stdout is the CLI's --json): the kit draws its own.
    con.execute("SET enable_progress_bar = false")
    if memory_limit is not None:
        con.execute("SET memory_limit = ?", [memory_limit])
    if temp_directory is not None:
        con.execute("SET temp_directory = ?", [str(temp_directory)])
    return con


class Workspace:
    """Harness data in DuckDB tables: ``conversations``, ``conversation_entries``, ``quarantine``.

    Every loaded source keeps its rows apart under its name (the ``source``
    column); loading the same source again replaces its rows atomically.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._sharded_exports: dict[str, Path] = {}
        """Sources loaded from a sharded export, by name: what ``parity(client=...)`` hands to Dask."""
        ensure_schema(con)

    def __repr__(self) -> str:
        sources = [
            r[0]
            for r in self.con.execute(
                "SELECT DISTINCT source FROM conversations ORDER BY 1"
            ).fetchall()
        ]
        return f"<Workspace sources={sources}>"

    def load(
        self,
        source: str | Path,
        *,
        name: str | None = None,
        agent_id: str | None = None,
        strict: bool = False,
        progress: bool | None = None,
        profile: bool = False,
    ) -> LoadSummary:
        """Load a harness SQLite file, a ``postgresql://`` URL, or a JSONL/Parquet export folder.

        Args:
            source: where the rows are.
            name: the ``source`` value the rows get (default: the path, or the
                URL with its password removed).
            agent_id: keep one agent's conversations (SQLite and PostgreSQL).
            strict: raise ``BadEntryError`` on the first bad row instead of
                quarantining it; nothing is written then.
            progress: draw a progress bar (default: only in a terminal).
            profile: print each phase's time and memory to stderr.

        Returns:
            The counts: rows read, loaded, quarantined by reason, anomalies by kind.
        """
        kind = detect_kind(source)
        label = name or source_label(source)
        with profiling(profile), phase(f"load {kind}"):
            stager = Stager(self.con)
            total = count_rows(source) if kind == "sqlite" else None
            try:
                with progress_bar(progress, total, f"loading {label}") as advance, phase("read and stage rows"):
                    if kind == "sqlite":
                        read_sqlite(source, stager, agent_id=agent_id, advance=advance)
                    elif kind == "postgres":
                        read_postgres(str(source), stager, agent_id=agent_id, advance=advance)
                    else:
                        if agent_id is not None:
                            raise SourceError("agent_id= filters harness databases, not exports")
                        for folder in shard_folders(Path(source)) or [Path(source)]:
                            export_source.read_export(folder, kind, stager, advance=advance)
            except BaseException:
                stager.abort()  # the staging transaction must not outlive a failed read
                raise
            if kind == "parquet" and shard_folders(Path(source)):
                self._sharded_exports[label] = Path(source)
            return stager.finish(label, kind, strict=strict)

    def export(
        self,
        path: str | Path,
        format: Literal["jsonl", "parquet"] = "jsonl",
        *,
        source: str | None = None,
        shards: int | None = None,
    ) -> Path:
        """Write ``conversations`` and ``conversation_entries`` to a folder (see :mod:`.sources.export`).

        With ``shards`` (Parquet only), one self-contained export folder per
        shard of conversations (``path/shard=K/``, the shard audit's key),
        which :mod:`poncho_replay.distributed` audits one Dask task per shard;
        the whole folder still loads as a plain export.
        """
        if shards is None:
            return export_source.write_export(self.con, Path(path), format, source=source)
        if format != "parquet":
            raise SourceError(f"a sharded export is Parquet, not {format}")
        return export_shards(self.con, Path(path), shards, source=source)

    @property
    def conversations(self) -> pd.DataFrame:
        """Every conversation row, all sources."""
        return self.sql("SELECT * FROM conversations ORDER BY source, id")

    @property
    def entries(self) -> pd.DataFrame:
        """Every entry row, all sources, in log order."""
        return self.sql(
            "SELECT * FROM conversation_entries ORDER BY source, conversation_id, seq, dup"
        )

    @property
    def quarantine(self) -> pd.DataFrame:
        """Rows that could not be parsed, with the reason and their raw text."""
        return self.sql('SELECT * FROM quarantine ORDER BY source, "table", row_key')

    @property
    def anomalies(self) -> pd.DataFrame:
        """Rows that loaded but break a harness rule (see ``sql/anomalies.sql``)."""
        return self.sql("SELECT * FROM anomalies ORDER BY source, kind, conversation_id, seq")

    @property
    def messages(self) -> pd.DataFrame:
        """Every conversation's LLM context and display transcript as the log rebuilds them.

        One row per message (``field`` is ``llm`` or ``display``), from the
        fleet SQL (:mod:`poncho_replay.fleet`); ``message`` is JSON text.
        """
        fleet.install(self.con)
        return self.sql(
            "SELECT source, conversation_id, 'llm' AS field, position, seq, message FROM llm_context "
            "UNION ALL SELECT source, conversation_id, 'display', position, seq, message FROM display_messages "
            "ORDER BY source, conversation_id, field, position"
        )

    @property
    def compactions(self) -> pd.DataFrame:
        """One row per compaction in the fleet, with its summarized and kept ranges and tokens.

        Built per conversation by :func:`poncho_replay.display.frames.compactions_df`
        (only conversations that compacted are read).
        """
        rows = self.con.execute(
            """
            SELECT e.source, e.conversation_id, e.id, e.seq, e.type, e.payload
            FROM conversation_entries AS e
            SEMI JOIN (SELECT DISTINCT source, conversation_id FROM conversation_entries WHERE type = 'compaction') AS c
                ON c.source = e.source AND c.conversation_id = e.conversation_id
            WHERE e.type IN ('compaction', 'harness_message')
            ORDER BY e.source, e.conversation_id, e.seq
            """
        ).fetchall()
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for source, cid, eid, seq, kind, payload in rows:
            entry = json.loads(payload) if kind == "compaction" else {}
            groups.setdefault((source, cid), []).append({**entry, "id": eid, "seq": seq, "type": kind})
        frames = [
            compactions_df(entries, conversation_id=cid).assign(source=source) for (source, cid), entries in groups.items()
        ]
        return pd.concat(frames, ignore_index=True) if frames else compactions_df([])

    # --- audit ---------------------------------------------------------------------------

    def parity(
        self,
        policy: Policy = "0.58",
        compare: audit.Comparison | audit.Normaliser = "exact",
        *,
        source: str | None = None,
        shards: int | None = None,
        progress: bool | None = None,
        profile: bool = False,
        client: Any = None,
    ) -> audit.ParityReport:
        """One row per conversation: what ``policy`` serves vs the blob, and why they differ.

        See :func:`poncho_replay.audit.parity_df` for the columns. Large fleets
        are audited by shards of conversations (:mod:`poncho_replay.shards`),
        which keeps the working set small and gives the same rows;
        ``shards`` overrides the count chosen from the fleet's size (1: the
        whole fleet at once). ``progress`` draws a bar per finished shard
        (default: only in a terminal). ``profile`` prints each phase's time
        and memory to stderr. ``client`` (a ``dask.distributed.Client``) runs
        the shards as Dask tasks, for a source loaded from a sharded export
        (:mod:`poncho_replay.distributed`).
        """
        with profiling(profile), phase("parity"):
            if client is not None:
                return self._parity_on_dask(policy, compare, source, client, progress)
            return self._parity(policy, compare, source, shards, progress)

    def _parity_on_dask(
        self,
        policy: Policy,
        compare: audit.Comparison | audit.Normaliser,
        source: str | None,
        client: Any,
        progress: bool | None,
    ) -> audit.ParityReport:
        from poncho_replay import distributed

        names = [source] if source is not None else list(self._sharded_exports)
        if len(names) != 1 or names[0] not in self._sharded_exports:
            raise SourceError(
                "parity(client=...) audits one source loaded from a sharded export "
                f"(loaded here: {sorted(self._sharded_exports) or 'none'}); pass source= or load one"
            )
        path = self._sharded_exports[names[0]]
        with progress_bar(progress, len(shard_folders(path)), "auditing shards on Dask") as advance:
            return distributed.parity(path, client, policy, compare, on_shard=lambda done, total: advance(1))

    def _parity(
        self,
        policy: Policy,
        compare: audit.Comparison | audit.Normaliser,
        source: str | None,
        shards: int | None,
        progress: bool | None,
    ) -> audit.ParityReport:
        if shards is None:
            # (fetchall: a fetchone leaves the result open, and DuckDB then refuses the next query)
            n = self.con.execute(
                "SELECT count(*) FROM conversation_entries WHERE ?::VARCHAR IS NULL OR source = ?", [source, source]
            ).fetchall()[0][0]
            shards = default_shards(n)
        if shards == 1:
            return audit.parity_df(self.con, policy, compare, source)
        with progress_bar(progress, shards, f"auditing {shards} shards") as advance:
            return parity_by_shards(
                self.con, policy, compare, source=source, shards=shards, on_shard=lambda done, total: advance(1)
            )

    def parity_summary(
        self,
        policy: Policy = "0.58",
        compare: audit.Comparison | audit.Normaliser = "exact",
        *,
        source: str | None = None,
    ) -> pd.DataFrame:
        """Conversations counted by verdict, harness verdict and cause."""
        return audit.parity_summary_df(self.parity(policy, compare, source=source))

    def compare_policies(self, a: Policy, b: Policy, *, source: str | None = None) -> pd.DataFrame:
        """The conversations two rebuild policies would serve differently, and the fields."""
        return audit.compare_policies(self.con, a, b, source)

    def conversation(self, conversation_id: str, *, source: str | None = None, policy: Policy = "0.58") -> ConversationView:
        """One conversation's blob and log, ready to render, replay, chart and diff."""
        src, agent = self._locate(conversation_id, source)
        store = DuckDBStore(connection=self.con, source=src, agent_id=agent, read_cutover=False)
        try:
            blob = store.get_with_archive(conversation_id)
            entries = store.read_entries(conversation_id)
        except RecursionError:
            # Valid JSON nested deeper than json.loads goes (DuckDB loads and audits it):
            # a view that shows why, so one odd conversation never takes a report down.
            title, texts = self._raw_json(src, conversation_id)
            return ConversationView.unshowable(conversation_id, nesting_reason(texts), title=title, policy=policy)
        except BadEntryError as exc:
            # A blob the loader accepted as JSON but that is not the harness's shape (e.g.
            # `messages` not a list): the audit still covers it; the view says why it cannot draw it.
            title, _ = self._raw_json(src, conversation_id)
            return ConversationView.unshowable(
                conversation_id, f"its stored row is not in the harness's shape ({exc})", title=title, policy=policy
            )
        if blob is None:
            raise SourceError(f"conversation {conversation_id} has no row in source {src}")
        return ConversationView(blob, entries, policy=policy)

    def _raw_json(self, source: str, conversation_id: str) -> tuple[str | None, list[str | None]]:
        """A conversation's title and every stored JSON text of it (blob columns and entry payloads), unparsed."""
        row = self.con.execute(
            f"SELECT title, {', '.join(CONVERSATION_JSON_COLUMNS)} FROM conversations WHERE source = ? AND id = ?",
            [source, conversation_id],
        ).fetchone()
        payloads = self.con.execute(
            "SELECT payload FROM conversation_entries WHERE source = ? AND conversation_id = ?",
            [source, conversation_id],
        ).fetchall()
        return (row[0] if row else None), [*(row[1:] if row else ()), *(p for (p,) in payloads)]

    def report(
        self,
        path: str | Path,
        policy: Policy = "0.58",
        *,
        source: str | None = None,
        worst: int = 5,
        parity: audit.ParityReport | None = None,
    ) -> Path:
        """Write one self-contained HTML report (sources, parity, charts, worst conversations).

        It opens from disk with no server or network; see :mod:`poncho_replay.report`.
        Pass ``parity`` (the result of :meth:`parity` run with the same policy
        and source) to report on an audit already computed instead of running it again.
        """
        from poncho_replay.report import write_report

        return write_report(self, path, policy, source=source, worst=worst, parity=parity)

    def _locate(self, conversation_id: str, source: str | None) -> tuple[str, str]:
        rows = self.con.execute(
            "SELECT source, agent_id FROM conversations WHERE id = ? AND (? IS NULL OR source = ?) ORDER BY source",
            [conversation_id, source, source],
        ).fetchall()
        if not rows:
            raise SourceError(f"no conversation {conversation_id}" + (f" in source {source}" if source else ""))
        if len(rows) > 1:
            names = ", ".join(r[0] for r in rows)
            raise SourceError(f"conversation {conversation_id} is in several sources ({names}); pass source=")
        return rows[0][0], rows[0][1]

    @property
    def store(self) -> DuckDBStore:
        """The harness ConversationStore over these tables.

        With exactly one loaded source it serves that source (and its one
        agent); otherwise it is the workspace's own ``"store"`` source.
        """
        rows = self.con.execute("SELECT DISTINCT source, agent_id FROM conversations ORDER BY 1, 2").fetchall()
        if len(rows) == 1:
            return DuckDBStore(connection=self.con, source=rows[0][0], agent_id=rows[0][1])
        return DuckDBStore(connection=self.con)

    def llm_requests(
        self,
        format: str = "anthropic",
        policy: Policy = "0.58",
        *,
        system: str | None = None,
        conversations: Any = None,
        hidden: bool = False,
    ) -> pd.DataFrame:
        """One row per (conversation, user turn): the model request the harness sends at the turn's start.

        See :func:`poncho_replay.inspect_dataset.llm_requests_df` (``format``
        ``"anthropic"`` or ``"openai"``; ``hidden=True`` adds subagent
        callback turns; the system prompt is not stored, so it is a parameter).
        """
        from poncho_replay.inspect_dataset import llm_requests_df

        return llm_requests_df(self, format=format, policy=policy, system=system, conversations=conversations, hidden=hidden)

    def to_inspect_dataset(
        self,
        path: str | Path,
        policy: Policy = "0.58",
        *,
        system: str | None = None,
        conversations: Any = None,
        hidden: bool = False,
    ) -> Path:
        """Write an Inspect AI dataset (JSONL): one sample per user turn, input = the context sent then.

        ``inspect_ai.dataset.json_dataset(path)`` reads it. See
        :mod:`poncho_replay.inspect_dataset` for the sample's fields.
        """
        from poncho_replay.inspect_dataset import inspect_samples, write_inspect_dataset

        samples = inspect_samples(self, policy=policy, system=system, conversations=conversations, hidden=hidden)
        return write_inspect_dataset(samples, path)

    def sql(self, query: str, params: Any = None) -> pd.DataFrame:
        """Run a query on the workspace (values as ``params``, never spliced in)."""
        return (
            self.con.execute(query, params).df()
            if params is not None
            else self.con.execute(query).df()
        )


def detect_kind(source: str | Path) -> SourceKind:
    """Which reader a source needs, from its URL scheme or its contents."""
    if isinstance(source, str) and is_postgres_url(source):
        return "postgres"
    path = Path(source)
    if path.is_dir():
        folders = shard_folders(path)
        kind = export_source.detect(folders[0] if folders else path)
        if kind is None:
            raise SourceError(f"{path} holds no conversations/entries .jsonl or .parquet files")
        return kind
    if not path.is_file():
        raise SourceError(f"no such source: {path}")
    with path.open("rb") as fh:
        if fh.read(16) == b"SQLite format 3\x00":
            return "sqlite"
    raise SourceError(f"{path} is neither a SQLite database nor an export folder")
