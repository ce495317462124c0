"""The audit of a harness database bigger than memory: split while reading, then one shard at a time.

``ws.load(source)`` then ``ws.parity()`` holds the whole fleet in one DuckDB:
about 2 GiB per million entries, 20 GiB at ten million. This path reads a
harness SQLite file or PostgreSQL database once with the loader's own reader
(:func:`~poncho_replay.sources.sqlite.read_sqlite`,
:func:`~poncho_replay.sources.postgres.read_postgres`: one snapshot), and instead of staging each Arrow batch it routes the
batch's rows to the shard of their conversation (DESIGN "Shards": MD5 of
source and thread root) in spool files on disk, raw and in order. Then each
shard is staged, checked, loaded and audited in a fresh in-memory workspace
by the same :class:`~poncho_replay.sources.ingest.Stager` and the same
rules, and dropped: the memory is one shard's whatever the fleet's size,
and the rows equal ``ws.load(source); ws.parity()``'s (tests/test_streamed.py).

Counts the shards cannot see alone are not lost: the load summary adds up
every shard's (rows read, loaded, quarantined by reason, repaired), and the
anomalies that span shards (an entry id in two conversations of different
shards, which a harness file's UNIQUE constraint forbids) are counted
over the spools' id columns in one pass. The facts of the whole source a
cause rule reads (whether 0.59.3+ wrote it: :func:`spool_source_facts`) are
found before any shard is audited and handed to each.

Example:
    >>> report, summary = parity_streamed("fleet.sqlite")  # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import gc
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from poncho_replay import audit
from poncho_replay.policy import Policy, resolve_policy
from poncho_replay.profiling import phase
from poncho_replay.shards import SHARD_SQL, default_shards
from poncho_replay.sources.databases import source_label, source_rows
from poncho_replay.sources.ingest import NULL_SUFFIX, LoadSummary, Stager, with_nulls
from poncho_replay.sources.postgres import is_postgres_url, read_postgres
from poncho_replay.sources.sqlite import read_sqlite

if TYPE_CHECKING:
    from poncho_replay.workspace import Workspace

__all__ = ["ShardSpool", "audit_spool", "parity_streamed", "spool_source", "spool_source_facts"]

TABLES = ("conversations", "conversation_entries")


class ShardSpool:
    """A :class:`Stager`-shaped sink that writes each batch's rows to their shard's spool files.

    Conversations come first (the reader reads them first): each one's shard
    is kept by id, so its entries follow it; entries of a conversation with
    no row (orphans) go where such a conversation would. Within a shard the
    rows keep the source's order, which decides what a duplicate ranks
    behind (``Stager.finish``).
    """

    def __init__(self, folder: Path, source: str, shards: int, kind: str = "sqlite") -> None:
        self.folder = folder
        self.source = source
        self.kind = kind
        self.shards = shards
        self._shard_of: dict[str, int] = {}
        self._writers: dict[tuple[int, str], tuple[pa.ipc.RecordBatchFileWriter, pa.Schema]] = {}
        self._parts: dict[int, list[tuple[str, Path]]] = {k: [] for k in range(shards)}
        self._duck = duckdb.connect()
        self._duck.execute("SET enable_progress_bar = false")

    def add(self, table: str, batch: pa.RecordBatch | pa.Table) -> int:
        """Route one raw batch (the reader's columns) to the shards; returns its size."""
        if isinstance(batch, pa.Table):  # the PostgreSQL reader stages tables
            return sum(self.add(table, b) for b in batch.combine_chunks().to_batches())
        n = batch.num_rows
        if n == 0:
            return 0
        ids = batch.column("id" if table == "conversations" else "conversation_id").to_pylist()
        if table == "conversations":
            shard = self._conversation_shards(batch, ids)
            self._shard_of.update(zip(ids, shard.tolist(), strict=True))
        else:
            shard = np.fromiter((self._shard_of.get(i, -1) for i in ids), dtype=np.int64, count=n)
            orphans = shard < 0
            if orphans.any():  # entries with no conversation row: the shard such a conversation would have
                shard[orphans] = self._roots_shards([ids[i] for i in np.flatnonzero(orphans)], [None] * int(orphans.sum()))
        order = np.argsort(shard, kind="stable")
        bounds = np.searchsorted(shard[order], np.arange(self.shards + 1))
        taken = batch.take(pa.array(order))
        for k in range(self.shards):
            if bounds[k + 1] > bounds[k]:
                self._write(k, table, taken.slice(bounds[k], bounds[k + 1] - bounds[k]))
        return n

    def _conversation_shards(self, batch: pa.RecordBatch, ids: list[str]) -> np.ndarray:
        """The ingest's thread root (the column, else the blob's ``parentConversationId``), hashed."""
        names = batch.schema.names
        column = "parent_conversation_id"
        parents: list[str | None]
        if column in names:
            values = batch.column(column).cast(pa.string())
            if f"{column}{NULL_SUFFIX}" in names:
                values = with_nulls(values, batch.column(f"{column}{NULL_SUFFIX}"))
            parents = values.to_pylist()
        else:
            parents = [None] * batch.num_rows
        missing = [i for i, p in enumerate(parents) if p is None]
        if missing and "data" in names:
            data = pc.take(batch.column("data").cast(pa.string()), pa.array(missing))
            blob = pa.table({"data": data})  # noqa: F841 - read by the query below
            found = self._duck.execute(
                "SELECT CASE WHEN json_valid(data) THEN json_extract_string(data, '$.parentConversationId') END FROM blob"
            ).fetchall()
            for i, (parent,) in zip(missing, found, strict=True):
                parents[i] = parent
        return np.asarray(self._roots_shards(ids, parents), dtype=np.int64)

    def _roots_shards(self, ids: list[str], parents: list[str | None]) -> list[int]:
        keys = pa.table({"id": pa.array(ids, pa.string()), "parent_conversation_id": pa.array(parents, pa.string())})  # noqa: F841
        rows = self._duck.execute(
            f"SELECT {SHARD_SQL} FROM (SELECT $source AS source, * FROM keys)",
            {"source": self.source, "shards": self.shards},
        ).fetchall()
        return [r[0] for r in rows]

    def _write(self, shard: int, table: str, part: pa.RecordBatch) -> None:
        open_ = self._writers.get((shard, table))
        if open_ is not None and open_[1] != part.schema:  # a batch typed otherwise: a new part, order kept
            open_[0].close()
            open_ = None
        if open_ is None:
            path = self.folder / f"shard-{shard}-{len(self._parts[shard])}-{table}.arrow"
            open_ = (pa.ipc.new_file(path, part.schema), part.schema)
            self._writers[shard, table] = open_
            self._parts[shard].append((table, path))
        open_[0].write_batch(part)

    def close(self) -> None:
        """Finish every spool file (before any shard is read back)."""
        for writer, _ in self._writers.values():
            writer.close()
        self._writers.clear()
        self._duck.close()

    def parts(self, shard: int) -> list[tuple[str, Path]]:
        """``(table, file)`` of one shard, in the order they were written."""
        return list(self._parts[shard])


def _tables(parts: list[tuple[str, Path]], columns: list[str] | None = None) -> Iterator[tuple[str, pa.Table]]:
    """Each spool file as one table (its ``columns``, default all), valid until the next is read.

    One table a file, not its batches: a reader batch split over many shards
    leaves a few hundred rows a batch, and each ``Stager.add`` or DuckDB
    insert has a fixed cost (at ten million entries, 20 s of inserts for
    the id pass alone).
    """
    for table, path in parts:
        with pa.memory_map(str(path)) as source:
            read = pa.ipc.open_file(source).read_all()
            yield table, (read.select(columns) if columns else read.combine_chunks())


def _load_spooled_shard(parts: list[tuple[str, Path]], label: str, kind: str) -> tuple[Workspace, LoadSummary]:
    """One shard's spooled rows staged, checked and loaded into a fresh workspace (the caller closes it)."""
    from poncho_replay.workspace import open_for_audit

    ws = open_for_audit()
    try:
        stager = Stager(ws.con)
        for table, rows in _tables(parts):
            stager.add(table, rows)
        return ws, stager.finish(label, kind)
    except BaseException:
        ws.con.close()
        raise


def audit_spooled_shard(
    parts: list[tuple[str, Path]],
    label: str,
    policy: Policy,
    compare: audit.Comparison | audit.Normaliser,
    kind: str = "sqlite",
    source_facts: pa.Table | None = None,
) -> tuple[pd.DataFrame, LoadSummary]:
    """One shard: stage its spooled rows, check and load them, audit; its rows and its load's counts.

    ``source_facts``: the whole source's (:func:`spool_source_facts`), which
    the shard's own rows cannot show; ``None`` takes the shard for the whole source.
    """
    ws, summary = _load_spooled_shard(parts, label, kind)
    try:
        with audit.source_facts_shadowed(ws.con, source_facts):
            frame = pd.DataFrame(ws.parity(policy, compare, shards=1, progress=False))
        return frame, summary
    finally:
        ws.con.close()
        _release_memory()


def spool_source_facts(spool: ShardSpool) -> pa.Table:
    """The facts of the whole spooled source (:func:`poncho_replay.audit.source_facts`), before any shard is audited.

    Each shard's entries are loaded and asked (the checks that keep or
    quarantine an entry row read no conversation row), and the parts combine
    exactly (:func:`~poncho_replay.audit.merge_source_facts`): the
    dual-write's first and last entries can be in any shard. One more load
    of the entries per shard, the price of causes that do not depend on the
    shard a conversation lands in.
    """
    parts: list[pa.Table] = []
    for k in range(spool.shards):
        entries = [(table, path) for table, path in spool.parts(k) if table == "conversation_entries"]
        ws, _ = _load_spooled_shard(entries, spool.source, spool.kind)
        try:
            parts.append(audit.source_facts(ws.con))
        finally:
            ws.con.close()
            _release_memory()
    return audit.merge_source_facts(parts)


def _release_memory() -> None:
    """Give what a finished shard freed back to the system.

    A closed workspace frees its memory, but the allocators keep it for
    reuse (pyarrow's pool, the C heap), and what the next shard allocates
    does not always fit there: measured on a 1M-entry fleet in 8 shards,
    the resident memory between shards was 90 MB higher without this.
    """
    gc.collect()
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def _merge(into: LoadSummary, part: LoadSummary) -> None:
    for mine, theirs in ((into.read, part.read), (into.loaded, part.loaded), (into.quarantined, part.quarantined),
                         (into.anomalies, part.anomalies), (into.repaired, part.repaired)):  # fmt: skip
        for key, n in theirs.items():
            mine[key] = mine.get(key, 0) + n


def _duplicate_ids_across_shards(parts: list[tuple[int, Path]]) -> int:
    """How many more ``duplicate_id`` anomalies the whole file has than the shards counted alone.

    The whole load counts each entry id held by more than one entry once;
    each shard counted the ids duplicated inside it. An id held in several
    shards is one anomaly, counted by the shards as many times as it is
    duplicated inside one. Ids travel as 64-bit hashes (16 bytes a row);
    the rare hash found in two shards is settled on the ids themselves.
    """
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("CREATE TABLE ids (h UBIGINT, shard INTEGER)")
        for shard, batch in _ids(parts):
            con.execute("INSERT INTO ids SELECT hash(id), $shard FROM batch", {"shard": shard})
        hashes = [r[0] for r in con.execute(
            "SELECT h FROM ids GROUP BY h HAVING count(DISTINCT shard) > 1"
        ).fetchall()]  # fmt: skip
        if not hashes:
            return 0
        con.execute("CREATE TABLE suspects AS SELECT unnest($h::UBIGINT[]) AS h", {"h": hashes})
        con.execute("CREATE TABLE held (id VARCHAR, shard INTEGER)")
        for shard, batch in _ids(parts):
            con.execute("INSERT INTO held SELECT id, $shard FROM batch SEMI JOIN suspects ON hash(batch.id) = suspects.h",
                        {"shard": shard})  # fmt: skip
        across, counted = con.execute(
            """WITH per AS (SELECT id, shard, count(*) AS n FROM held GROUP BY ALL),
                    multi AS (SELECT id FROM per GROUP BY id HAVING count(*) > 1)
               SELECT count(DISTINCT id), count(*) FILTER (WHERE n > 1) FROM per SEMI JOIN multi USING (id)"""
        ).fetchall()[0]
        return int(across) - int(counted)
    finally:
        con.close()


def _ids(parts: list[tuple[int, Path]]) -> Iterator[tuple[int, pa.Table]]:
    for shard, path in parts:
        for _, ids in _tables([("conversation_entries", path)], ["id"]):
            yield shard, ids


def spool_source(
    source: str | Path,
    folder: str | Path,
    *,
    shards: int | None = None,
    name: str | None = None,
    agent_id: str | None = None,
    advance: Callable[[int], None] = lambda n: None,
) -> ShardSpool:
    """Read a harness SQLite file or PostgreSQL URL once (one snapshot) into per-shard spool files under ``folder``.

    Args:
        source: the harness SQLite file, or a ``postgresql://`` URL.
        folder: where the spool files go (created if missing).
        shards: how many (default: one per 250k entries, :func:`~poncho_replay.shards.default_shards`).
        name: the ``source`` value of the rows (default: as ``load`` names it,
            the file's absolute path or the URL without its password).
        agent_id: keep one agent's conversations, as ``load``.
        advance: called with each read batch's row count (a progress bar).
    """
    postgres = is_postgres_url(str(source))
    label = name or source_label(source)
    if shards is None:
        shards = default_shards(source_rows(source) or 0)
    Path(folder).mkdir(parents=True, exist_ok=True)
    sink = ShardSpool(Path(folder), label, shards, "postgres" if postgres else "sqlite")
    try:
        with phase("read and spool rows by shard"):
            if postgres:
                read_postgres(str(source), sink, agent_id=agent_id, advance=advance)  # type: ignore[arg-type]
            else:
                read_sqlite(source, sink, agent_id=agent_id, advance=advance)  # type: ignore[arg-type]
    finally:
        sink.close()
    return sink


def audit_spool(
    spool: ShardSpool,
    policy: Policy = "0.58",
    compare: audit.Comparison | audit.Normaliser = "exact",
    *,
    jobs: int = 1,
    on_shard: Callable[[int, int], None] = lambda done, total: None,
) -> tuple[audit.ParityReport, LoadSummary]:
    """Load and audit a spool's shards: the report and the load's counts, summed.

    ``jobs`` > 1 audits that many shards at once in worker processes (the
    memory of one shard each; a custom ``compare`` function runs here, one
    shard after another); ``on_shard(done, total)`` is called after each
    shard.
    """
    resolve_policy(policy)
    summary = LoadSummary(source=spool.source, kind=spool.kind)
    frames: list[pd.DataFrame] = []
    with phase("facts of the whole source"):
        facts = spool_source_facts(spool)
    for done, (frame, part) in enumerate(_audit_shards(spool, policy, compare, jobs, facts), start=1):
        frames.append(frame)
        _merge(summary, part)
        on_shard(done, spool.shards)
    entry_parts = [(k, p) for k in range(spool.shards) for t, p in spool.parts(k) if t == "conversation_entries"]
    with phase("duplicate ids across shards"):
        more = _duplicate_ids_across_shards(entry_parts)
    if more:
        summary.anomalies["duplicate_id"] = summary.anomalies.get("duplicate_id", 0) + more
    frame = pd.concat([f for f in frames if len(f)] or frames[:1] or [pd.DataFrame()], ignore_index=True)
    if len(frame):
        frame = frame.sort_values(["source", "conversation_id"], ignore_index=True)
    report = audit.ParityReport(frame)
    report.attrs["policy"] = resolve_policy(policy).describe()
    return report, summary


def _audit_shards(
    spool: ShardSpool,
    policy: Policy,
    compare: audit.Comparison | audit.Normaliser,
    jobs: int,
    facts: pa.Table | None = None,
) -> Iterator[tuple[pd.DataFrame, LoadSummary]]:
    """Each shard's rows and counts, in shard order: here one after another, or in ``jobs`` worker processes.

    ``facts``: the whole source's (:func:`spool_source_facts`), handed to every shard.
    """
    if jobs <= 1 or spool.shards == 1 or not isinstance(compare, str):  # (a custom normaliser may not pickle)
        for k in range(spool.shards):
            with phase(f"shard {k + 1}/{spool.shards}: load and audit"):
                yield audit_spooled_shard(spool.parts(k), spool.source, policy, compare, spool.kind, facts)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a forked child would inherit this process's DuckDB and thread state
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool, \
            phase(f"{spool.shards} shards: load and audit, {jobs} at once"):
        futures = [pool.submit(audit_spooled_shard, spool.parts(k), spool.source, policy, compare, spool.kind, facts)
                   for k in range(spool.shards)]  # fmt: skip
        for future in futures:
            yield future.result()


def parity_streamed(
    source: str | Path,
    policy: Policy = "0.58",
    compare: audit.Comparison | audit.Normaliser = "exact",
    *,
    shards: int | None = None,
    name: str | None = None,
    agent_id: str | None = None,
    jobs: int = 1,
    advance: Callable[[int], None] = lambda n: None,
    on_shard: Callable[[int, int], None] = lambda done, total: None,
) -> tuple[audit.ParityReport, LoadSummary]:
    """``ws.load(source); ws.parity(policy, compare)`` of a harness SQLite file or PostgreSQL URL, in one shard's memory.

    :func:`spool_source` into a temporary folder, then :func:`audit_spool`;
    see them for the arguments. Returns the parity report (the rows
    ``ws.parity`` gives) and the load's counts summed over the shards.
    """
    resolve_policy(policy)  # a bad policy fails before the file is read
    with tempfile.TemporaryDirectory(prefix="poncho-spool-") as folder:
        spool = spool_source(source, folder, shards=shards, name=name, agent_id=agent_id, advance=advance)
        return audit_spool(spool, policy, compare, jobs=jobs, on_shard=on_shard)
