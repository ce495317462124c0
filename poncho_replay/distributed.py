"""The parity audit of a sharded Parquet export: one task per shard, on Dask or one after another.

A sharded export (``ws.export(path, format="parquet", shards=N)``) holds one
self-contained export folder per shard (``path/shard=K/``). Each Dask task
loads its own shard folder with the kit's loader and audits it with the same
SQL and Python rules as one machine (:func:`poncho_replay.shards.audit_shard`
underneath ``Workspace.parity``); nothing large passes through the client,
only each shard's result rows come back. The facts of the whole source a
cause rule reads (whether 0.59.3+ wrote it) are found first
(:func:`export_source_facts`) and handed to every task. The workers must see ``path``
(a shared filesystem or the same machine).

Example:
    >>> from dask.distributed import Client                        # doctest: +SKIP
    >>> report = parity("export/", Client("tcp://scheduler:8786"))  # doctest: +SKIP
    >>> report.attrs["incomplete"]                                 # doctest: +SKIP
    {}
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from poncho_replay import audit
from poncho_replay.errors import ReplayError, SourceError
from poncho_replay.policy import Policy, resolve_policy
from poncho_replay.profiling import phase
from poncho_replay.shards import shard_folders

__all__ = ["audit_shard_folder", "connect", "export_source_facts", "parity", "shard_folder_source_facts"]

RETRIES = 1
"""Dask retries a failed shard task once; a shard that fails twice is reported, not fatal."""


def _dask() -> Any:
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - the extra is part of `make test`
        raise ReplayError(
            "the distributed audit needs Dask: pip install 'poncho_replay[dask]'"
        ) from exc
    return distributed


def audit_shard_folder(
    folder: str,
    label: str,
    policy: Policy,
    compare: audit.Comparison | audit.Normaliser,
    source_facts: pa.Table | None = None,
) -> pd.DataFrame:
    """One task: load one shard folder under the export's source name, audit it whole (runs on a worker).

    ``source_facts``: the whole export's (:func:`export_source_facts`), which
    one shard's rows cannot show; ``None`` takes the shard for the whole source.
    """
    from poncho_replay.workspace import open_for_audit

    ws = open_for_audit()
    try:
        ws.load(folder, name=label, progress=False)
        with audit.source_facts_shadowed(ws.con, source_facts):
            return pd.DataFrame(ws.parity(policy, compare, shards=1))
    finally:
        ws.con.close()


def shard_folder_source_facts(folder: str, label: str) -> pa.Table:
    """One task: load one shard folder and give its rows' source facts (:func:`poncho_replay.audit.source_facts`)."""
    from poncho_replay.workspace import open_for_audit

    ws = open_for_audit()
    try:
        ws.load(folder, name=label, progress=False)
        return audit.source_facts(ws.con)
    finally:
        ws.con.close()


def export_source_facts(folders: list[Path], label: str, client: Any | None = None) -> pa.Table:
    """The facts of a whole sharded export (:func:`poncho_replay.audit.source_facts`), before any shard is audited.

    Each shard folder is loaded and asked (on Dask when ``client`` is
    given), and the parts combine exactly
    (:func:`~poncho_replay.audit.merge_source_facts`), so the facts equal
    those of the whole export loaded at once. A folder that fails to load
    shows nothing here (its audit task fails too, and the report names it in
    ``attrs["incomplete"]``).
    """
    parts: list[pa.Table] = []
    if client is None:
        for folder in folders:
            try:
                parts.append(shard_folder_source_facts(str(folder), label))
            except Exception:  # noqa: BLE001, S112 - a shard that cannot load shows nothing; its audit task names it incomplete
                continue
    else:
        tasks = [client.submit(shard_folder_source_facts, str(f), label, retries=RETRIES, pure=False) for f in folders]
        for task in tasks:
            try:
                parts.append(task.result())
            except Exception:  # noqa: BLE001, S112 - as above
                continue
    return audit.merge_source_facts(parts)


def parity(
    path: str | Path,
    client: Any | None,
    policy: Policy = "0.58",
    compare: audit.Comparison | audit.Normaliser = "exact",
    *,
    on_shard: Callable[[int, int], None] = lambda done, total: None,
) -> audit.ParityReport:
    """The parity audit of a sharded export, one Dask task per shard.

    Returns the same :class:`~poncho_replay.audit.ParityReport` as
    ``poncho_replay.open().load(path).parity(policy, compare)``, row for row.
    A shard whose task fails twice (Dask retries it once) is left out and
    named in ``report.attrs["incomplete"]`` (shard folder -> error); the
    other shards' rows are still returned. ``on_shard(done, total)`` is
    called as each shard finishes. Without a client (``None``) the shards
    run one after another in this process, so memory stays that of one shard
    whatever the fleet's size.
    """
    root = Path(path)
    folders = shard_folders(root)
    if not folders:
        raise SourceError(
            f"{root} is not a sharded export (no shard=K folders): write one with "
            "ws.export(path, format='parquet', shards=N)"
        )
    resolve_policy(policy)  # a bad policy fails here, not on every worker
    label = str(root.resolve())  # the source name a plain load of the export gives
    with phase("facts of the whole source"):
        facts = export_source_facts(folders, label, client)
    if client is None:
        parts, incomplete = _serial(folders, label, policy, compare, on_shard, facts)
    else:
        parts, incomplete = _on_dask(client, folders, label, policy, compare, on_shard, facts)
    frame = pd.concat([p for p in parts if len(p)] or parts[:1] or [pd.DataFrame()], ignore_index=True)
    if len(frame):
        frame = frame.sort_values(["source", "conversation_id"], ignore_index=True)
    report = audit.ParityReport(frame)
    report.attrs["policy"] = resolve_policy(policy).describe()
    report.attrs["incomplete"] = incomplete
    return report


def _serial(
    folders: list[Path], label: str, policy: Policy, compare: audit.Comparison | audit.Normaliser,
    on_shard: Callable[[int, int], None], facts: pa.Table,
) -> tuple[list[pd.DataFrame], dict[str, str]]:  # fmt: skip
    parts = []
    for done, folder in enumerate(folders, 1):
        with phase(f"{folder.name} ({done}/{len(folders)})"):
            parts.append(audit_shard_folder(str(folder), label, policy, compare, facts))
        on_shard(done, len(folders))
    return parts, {}


def _on_dask(
    client: Any, folders: list[Path], label: str, policy: Policy, compare: audit.Comparison | audit.Normaliser,
    on_shard: Callable[[int, int], None], facts: pa.Table,
) -> tuple[list[pd.DataFrame], dict[str, str]]:  # fmt: skip
    distributed = _dask()
    futures = client.map(
        audit_shard_folder,
        [str(f) for f in folders],
        label=label,
        policy=policy,
        compare=compare,
        source_facts=facts,
        retries=RETRIES,
        pure=False,  # a fresh task per audit: results are never shared between audits by key
    )
    names = {fut.key: folder.name for fut, folder in zip(futures, folders, strict=True)}
    parts: list[pd.DataFrame] = []
    incomplete: dict[str, str] = {}
    for done, future in enumerate(distributed.as_completed(futures), 1):
        if future.status == "finished":
            parts.append(future.result())
        else:
            error = future.exception()
            incomplete[names[future.key]] = f"{type(error).__name__}: {error}"
        on_shard(done, len(folders))
    return parts, incomplete


def connect(address: str) -> Any:
    """A Dask client from the CLI's ``--dask``: ``local:N`` (a LocalCluster of N processes) or a scheduler address."""
    distributed = _dask()
    if address.startswith("local:"):
        workers = address.split(":", 1)[1]
        if not workers.isdigit() or int(workers) < 1:
            raise ReplayError(f"--dask {address!r}: use local:N with N >= 1 worker processes")
        cluster = distributed.LocalCluster(
            n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None
        )
        return distributed.Client(cluster)
    return distributed.Client(address)
