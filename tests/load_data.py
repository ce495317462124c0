"""A small hand-written harness dataset for the loader tests (SPEC §2 and §4 shapes)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from poncho_replay.bundled import sample_db

JsonDict = dict[str, Any]
T0 = 1772631001558  # 2026-03-04T13:30:01.558Z
SAMPLE_DB = sample_db()  # the real harness 0.58.0 sample, bundled with the package


def user(text: str) -> JsonDict:
    return {"role": "user", "content": text, "metadata": {"timestamp": T0, "custom": "kept"}}


def assistant(text: str) -> JsonDict:
    return {"role": "assistant", "content": text}


def conversation(
    cid: str, owner: str = "owner-a", tenant: str | None = None, **extra: Any
) -> JsonDict:
    """A conversation blob with a harness transcript and an archive (heavy fields)."""
    return {
        "conversationId": cid,
        "title": f"title {cid}",
        "messages": [user("hi"), assistant("hello")],
        "ownerId": owner,
        "tenantId": tenant,
        "createdAt": T0,
        "updatedAt": T0 + 5000,
        "_harnessMessages": [user("hi"), assistant("hello")],
        "_toolResultArchive": {"call-1": {"output": "x"}},
        **extra,
    }


def log(cid: str) -> list[JsonDict]:
    """Four stored entries: a user turn, two harness messages, the assistant bubble."""
    return [
        {"id": f"{cid}-e1", "seq": 1, "createdAt": T0 + 1000, "type": "user_message", "message": user("hi"), "turnId": "t1"},
        {"id": f"{cid}-e2", "seq": 2, "createdAt": T0 + 2000, "type": "harness_message", "message": user("hi"), "turnId": "t1"},
        {"id": f"{cid}-e3", "seq": 3, "createdAt": T0 + 3000, "type": "harness_message", "message": assistant("hello"), "turnId": "t1"},
        {"id": f"{cid}-e4", "seq": 4, "createdAt": T0 + 4000, "type": "assistant_message", "message": assistant("hello"),
         "turnId": "t1", "runId": "r1"},
    ]  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
