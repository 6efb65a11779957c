"""The one JSON serialisation we hash (pure; no I/O)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, ASCII only: the same value always gives the same bytes.

    ASCII-only makes stored bytes independent of the database encoding.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()
