"""Read conversations of the bundled harness 0.58.0 sample for the display and chart tests.

The file is opened read-only with ``sqlite3``. Entries are rebuilt the way
the harness's ``readEntries`` does (SPEC §4): the parsed payload with ``id``
and ``seq`` from the columns and ``createdAt`` from the ISO-8601 column; the
blob is ``data`` with the ``harness_messages`` column as ``_harnessMessages``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from functools import cache
from typing import Any

from poncho_replay.bundled import sample_db

JsonDict = dict[str, Any]

PRINTING_PRESS = "31032086-b3c1-43bb-9789-0d94ae2d096f"
THESIS = "7777a96f-5f29-42b6-b283-03c3aff286e1"
MORNING = "9c0910c0-0efe-4c15-a702-74cee57389db"
BACKUP = "c5190913-2263-46c6-84c6-bbb5d1d09655"
INVOICE = "5f7f6f3d-bddb-47cf-8b9c-f5c72f7f246b"
VENDORS = "1918d56d-a3ee-4b04-92a6-d2fdec23e35f"
LOG_TRIAGE = "c8f1bf5d-b574-4c61-a2a3-4a8d178d4008"
OLD_NOTES = "61ed8647-29e6-459b-ae2a-a29d0b9600cd"
GARDEN = "43b163de-17bf-47d6-8f68-df9e0e076552"


def _epoch_ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


@cache
def _rows() -> tuple[dict[str, JsonDict], dict[str, list[JsonDict]]]:
    con = sqlite3.connect(f"file:{sample_db()}?mode=ro", uri=True)
    try:
        blobs: dict[str, JsonDict] = {}
        for cid, data, harness in con.execute(
            "SELECT id, data, harness_messages FROM conversations"
        ):
            blob = json.loads(data)
            if harness is not None:
                blob["_harnessMessages"] = json.loads(harness)
            blobs[cid] = blob
        logs: dict[str, list[JsonDict]] = {cid: [] for cid in blobs}
        for cid, eid, seq, created, payload in con.execute(
            "SELECT conversation_id, id, seq, created_at, payload FROM conversation_entries ORDER BY conversation_id, seq"
        ):
            logs[cid].append(
                {**json.loads(payload), "id": eid, "seq": seq, "createdAt": _epoch_ms(created)}
            )
        return blobs, logs
    finally:
        con.close()


def sample(cid: str) -> tuple[JsonDict, list[JsonDict]]:
    """A fresh copy of (blob, entries) for one sample conversation."""
    blobs, logs = _rows()
    return json.loads(json.dumps(blobs[cid])), json.loads(json.dumps(logs[cid]))


def sample_ids() -> list[str]:
    """Every conversation id in the sample."""
    return sorted(_rows()[0])
