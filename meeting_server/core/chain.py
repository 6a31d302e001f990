"""The audit hash chain: one pure definition shared by the server and `verify`.

Each audit entry is hashed over a canonical JSON form of its fields plus the
hash of the previous entry of the same meeting, so editing, inserting,
removing or reordering any entry changes every later hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: The hash that the first entry of every meeting points back to.
GENESIS = "0" * 64

#: The fields of an entry that are covered by its hash, in canonical order.
FIELDS = ("meeting_id", "seq", "at", "actor", "command", "data", "prev")


def canonical_json(value: Any) -> bytes:
    """Deterministic UTF-8 JSON: sorted keys, no spaces, non-ASCII kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 (hex) of an entry's covered fields; `entry["prev"]` must be set."""
    return hashlib.sha256(canonical_json({k: entry.get(k) for k in FIELDS})).hexdigest()


def verify_chain(entries: list[dict[str, Any]]) -> tuple[bool, int | None, str]:
    """Check a meeting's entries in order.

    Returns (ok, index_of_first_bad_entry, message). Each entry must carry
    `seq` counting from 1, `prev` equal to the previous entry's `hash`
    (GENESIS for the first) and `hash` equal to `entry_hash(entry)`.
    """
    prev = GENESIS
    for i, e in enumerate(entries):
        if e.get("seq") != i + 1:
            return False, i, f"entry {i + 1}: seq is {e.get('seq')!r}, expected {i + 1}"
        if e.get("prev") != prev:
            return False, i, f"entry {i + 1}: prev does not match the hash of entry {i}"
        if e.get("hash") != entry_hash(e):
            return False, i, f"entry {i + 1}: hash does not match its content"
        prev = e["hash"]
    return True, None, f"{len(entries)} entries chained"
