#!/usr/bin/env python3
"""Verify an exported case (or several) away from the database, with the Python standard library only.

    python3 scripts/verify_export.py case.jsonl        # escalations audit CASE --format jsonl > case.jsonl
    curl -s "$API/v1/escalations/CASE/audit?format=jsonl" -H "$AUTH" | python3 scripts/verify_export.py -

Each line of the export is one stored event: ``body`` is its exact stored bytes (canonical JSON, ASCII)
beside ``stream_id``, ``version``, ``prev_hash`` and ``hash``. For every stream this checks that versions
run 1, 2, 3... without a gap, that each event's ``prev_hash`` is the previous event's ``hash`` (the first
one's is 64 zeros), that ``hash = sha256(bytes.fromhex(prev_hash) + body)``, and that the body names the
same stream and version as its line. Any changed byte of a body or a hash breaks one of these.

Exit status: 0 every chain verifies; 1 a break (each printed as ``BROKEN stream version: reason``);
2 the file cannot be read as an export.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable

ZERO_HASH = "0" * 64
FIELDS = ("stream_id", "version", "prev_hash", "hash", "body")


def _problem(line: dict, expected_version: int, expected_prev: str) -> str | None:
    if line["version"] != expected_version:
        return f"gap: expected version {expected_version}"
    if line["prev_hash"] != expected_prev:
        return "prev_hash is not the previous hash"
    try:
        body_bytes = line["body"].encode("ascii")
        computed = hashlib.sha256(bytes.fromhex(line["prev_hash"]) + body_bytes).hexdigest()
    except (UnicodeEncodeError, ValueError):
        return "the stored bytes are not ASCII canonical JSON, or prev_hash is not hexadecimal"
    if computed != line["hash"]:
        return "hash does not match the stored bytes"
    try:
        body = json.loads(line["body"])
    except json.JSONDecodeError:
        return "the stored bytes are not JSON"
    if (
        not isinstance(body, dict)
        or body.get("stream_id") != line["stream_id"]
        or body.get("version") != line["version"]
    ):
        return "the stored bytes name another stream or version"
    return None


def verify(lines: Iterable[str]) -> tuple[int, int, list[str]]:
    """(streams, events, problems) for the export's lines; raises ValueError for a line that is not an export's."""
    chains: dict[str, tuple[int, str, bool]] = {}  # stream -> (next version, previous hash, broken)
    problems: list[str] = []
    events = 0
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number} is not JSON: {exc}") from None
        if not isinstance(line, dict) or any(field not in line for field in FIELDS):
            raise ValueError(f"line {number} is not an exported event (it needs {', '.join(FIELDS)})")
        events += 1
        stream = line["stream_id"]
        expected_version, expected_prev, broken = chains.get(stream, (1, ZERO_HASH, False))
        if broken:
            continue  # the first break of a stream is the one to report
        problem = _problem(line, expected_version, expected_prev)
        if problem:
            problems.append(f"{stream} version {line['version']}: {problem}")
            chains[stream] = (expected_version, expected_prev, True)
        else:
            chains[stream] = (expected_version + 1, line["hash"], False)
    return len(chains), events, problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: verify_export.py FILE|-", file=sys.stderr)
        return 2
    try:
        if argv[1] == "-":
            streams, events, problems = verify(sys.stdin)
        else:
            with open(argv[1], encoding="utf-8") as handle:
                streams, events, problems = verify(handle)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        print(f"verify_export: {exc}", file=sys.stderr)
        return 2
    if events == 0:
        print("verify_export: the export holds no events", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"BROKEN {problem}")
    if problems:
        return 1
    print(f"OK: {streams} streams, {events} events, every hash chain verifies")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
