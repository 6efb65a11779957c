#!/usr/bin/env python3
"""Verify the escalation log's proofs offline: no database, no network, the standard library and ``cryptography``.

    python3 scripts/verify_bundle.py verify-bundle CASE.bundle.json --key KEY [--checkpoint SAVED]
    python3 scripts/verify_bundle.py verify-consistency SAVED NEWER --key KEY
    python3 scripts/verify_bundle.py verify-checkpoint CHECKPOINT --key KEY

``KEY`` is the log's public key as ``GET /v1/audit/key`` publishes it (``name+keyid+base64``, the
signed-note verifier key format), given as text or as a file holding it. Get it once, from a source
you trust, and keep it: a verification is only as good as the key it trusts.

What is checked
* **verify-bundle**: the checkpoint's Ed25519 signature (C2SP signed-note); every event's chain link
  (versions 1, 2, 3... with no gap, ``prev_hash`` is the previous event's ``hash``, the first one's is
  64 zeros, ``hash = sha256(prev_hash bytes + stored bytes)``, and the stored bytes name the case's
  stream and the version); every event's RFC 9162 inclusion proof against the checkpoint's root. With
  ``--checkpoint SAVED`` (a checkpoint saved earlier): the bundle's checkpoint extends it (the same tree,
  or a consistency proof the bundle carries from the saved size), so nothing the saved checkpoint
  covered was removed or rewritten since.
* **verify-consistency**: both checkpoints' signatures, and the consistency proof between them.
  ``NEWER`` is a file from ``GET /v1/audit/proofs/consistency?first=SIZE`` (or ``escalations log
  consistency SIZE``): the later checkpoint and the proof from the saved one's size.
* **verify-checkpoint**: one checkpoint's signature, and what it says.

The hashing is RFC 9162's: leaf = SHA-256(0x00 || leaf data), node = SHA-256(0x01 || left || right);
a leaf's data is the 32 bytes of the event's stored hash (its ``hash`` field, hex-decoded).

Exit status: 0 everything verifies; 1 something does not (each failure printed as ``FAILED what: why``);
2 an input cannot be read.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ZERO_HASH = "0" * 64
ED25519 = 0x01  # the signed-note signature type of Ed25519
BUNDLE_FORMAT = "escalations-case-bundle/1"
CONSISTENCY_FORMAT = "escalations-consistency/1"


class Unreadable(Exception):
    """An input that is not what it should be (exit status 2)."""


# --------------------------------------------------------------------------- RFC 9162 hashing and proofs


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaves (already leaf-hashed), by RFC 9162's recursive definition; the empty tree's root
    is SHA-256 of nothing. For tests and small trees: it holds every leaf in memory."""
    n = len(leaf_hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


def inclusion_verifies(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does ``path`` prove the leaf hash ``leaf`` at ``index`` in the tree of
    ``size`` leaves whose root is ``root``?"""
    if index < 0 or index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_verifies(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: does ``path`` prove the tree of ``second`` leaves extends the tree of
    ``first`` leaves (every one of its leaves unchanged, in the same order)?"""
    if first < 0 or first > second:
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path  # every tree extends the empty one
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:  # an exact power of two: its root is the proof's implicit first node
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# --------------------------------------------------------------------------- signed notes (C2SP)


@dataclass(frozen=True)
class VerifierKey:
    """A signed-note verifier key: ``name+hex key id+base64(0x01 || 32-byte Ed25519 public key)``."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)  # base64 may hold "+"; a name and a key id never do
        if len(parts) != 3 or not parts[0]:
            raise Unreadable("a key is name+keyid+base64 (as GET /v1/audit/key gives it)")
        name, id_hex, encoded = parts
        try:
            key_id = bytes.fromhex(id_hex)
            raw = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise Unreadable("the key's id is not hexadecimal or its key is not base64") from None
        if len(key_id) != 4 or len(raw) != 33 or raw[0] != ED25519:
            raise Unreadable("the key is not an Ed25519 signed-note key (4-byte id, type 0x01, 32-byte key)")
        key = cls(name, key_id, raw[1:])
        if key_id_of(name, raw[1:]) != key_id:
            raise Unreadable("the key's id does not match its name and public key")
        return key


def key_id_of(name: str, public_key: bytes) -> bytes:
    """The signed-note key id: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: the note text (origin, size, base64 root, extension lines) and its signatures."""

    text: str
    origin: str
    size: int
    root: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (key name, key id + signature)

    @classmethod
    def parse(cls, note: str) -> Checkpoint:
        text, sep, signature_block = note.partition("\n\n")
        if not sep or not signature_block:
            raise Unreadable("a checkpoint is a signed note: its text, a blank line, then signature lines")
        text += "\n"
        lines = text.split("\n")[:-1]
        if len(lines) < 3 or any(not line for line in lines):
            raise Unreadable("a checkpoint's text has an origin, a tree size and a root, each on its own line")
        origin, size_text, root_text = lines[:3]
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise Unreadable(f"the tree size {size_text!r} is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise Unreadable("the root hash is not base64") from None
        if len(root) != 32:
            raise Unreadable("the root hash is not 32 bytes")
        signatures = []
        for line in signature_block.rstrip("\n").split("\n"):
            if not line.startswith("\u2014 "):
                raise Unreadable(f"{line[:40]!r} is not a signature line (em dash, space, key name, signature)")
            name, _, encoded = line[2:].rpartition(" ")
            try:
                signature = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise Unreadable(f"the signature of {name!r} is not base64") from None
            if len(signature) < 5:
                raise Unreadable(f"the signature of {name!r} is too short")
            signatures.append((name, signature))
        return cls(text, origin, int(size_text), root, tuple(signatures))

    def problem_with_signature(self, key: VerifierKey) -> str | None:
        """Why the checkpoint is not signed by ``key`` (None when it is)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        if self.origin != key.name:
            return f"the checkpoint is of log {self.origin!r}, the key of {key.name!r}"
        mine = [sig for name, sig in self.signatures if name == key.name and sig[:4] == key.key_id]
        if not mine:
            return f"no signature by the key {key.name} ({key.key_id.hex()}): signed by another key"
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(mine[0][4:], self.text.encode())
        except InvalidSignature:
            return f"the signature of {key.name} does not verify: the checkpoint was altered or signed by another key"
        return None


# --------------------------------------------------------------------------- bundles


def _hex32(value: object, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 64:
        raise Unreadable(f"{what} is not 64 hexadecimal digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise Unreadable(f"{what} is not hexadecimal") from None


def chain_problem(event: dict, stream_id: str, expected_version: int, expected_prev: str) -> str | None:
    """Why a stored event does not continue its stream's chain (None when it does)."""
    if event.get("version") != expected_version:
        return f"gap: expected version {expected_version}, found {event.get('version')}"
    if event.get("prev_hash") != expected_prev:
        return "prev_hash is not the previous event's hash"
    body = event.get("body")
    if not isinstance(body, str):
        return "the stored bytes are missing"
    try:
        computed = hashlib.sha256(bytes.fromhex(event["prev_hash"]) + body.encode("ascii")).hexdigest()
    except (UnicodeEncodeError, ValueError):
        return "the stored bytes are not ASCII canonical JSON, or prev_hash is not hexadecimal"
    if computed != event.get("hash"):
        return "hash does not match the stored bytes"
    try:
        content = json.loads(body)
    except json.JSONDecodeError:
        return "the stored bytes are not JSON"
    if (
        not isinstance(content, dict)
        or content.get("stream_id") != stream_id
        or content.get("version") != expected_version
    ):
        return "the stored bytes name another stream or version"
    return None


def extension_problem(saved: Checkpoint, later: Checkpoint, proof: Sequence[bytes] | None) -> str | None:
    """Why ``later`` is not shown to extend ``saved`` (both already signature-checked)."""
    if later.size < saved.size:
        return (
            f"the log's checkpoint covers {later.size} events, fewer than the saved one's {saved.size}: "
            "events were removed, or the bundle predates the saved checkpoint"
        )
    if later.size == saved.size:
        if later.root != saved.root:
            return (
                f"the log at size {later.size} does not extend the saved checkpoint at size {saved.size}: "
                "a different tree of the same size, so events it covered were removed, reordered or rewritten"
            )
        return None
    if proof is None:
        return f"no consistency proof from size {saved.size}: export with --since {saved.size}"
    if not consistency_verifies(saved.size, later.size, saved.root, later.root, proof):
        return (
            f"the log at size {later.size} does not extend the saved checkpoint at size {saved.size}: "
            "events it covered were removed, reordered or rewritten"
        )
    return None


def _proof(value: object, what: str) -> list[bytes]:
    if not isinstance(value, list):
        raise Unreadable(f"{what} is not a list of hashes")
    return [_hex32(item, what) for item in value]


def verify_bundle(bundle: dict, key: VerifierKey, saved: Checkpoint | None = None) -> tuple[int, list[str]]:
    """(events checked, failures) for a case bundle. Raises ``Unreadable`` when it is not a bundle."""
    if bundle.get("format") != BUNDLE_FORMAT:
        raise Unreadable(f"not a case bundle (format {BUNDLE_FORMAT!r} expected)")
    failures: list[str] = []
    checkpoint = Checkpoint.parse(_text(bundle.get("checkpoint"), "the checkpoint"))
    if problem := checkpoint.problem_with_signature(key):
        failures.append(f"checkpoint: {problem}")
    stream_id = _text(bundle.get("stream_id"), "the stream id")
    events = bundle.get("events")
    if not isinstance(events, list) or not events:
        raise Unreadable("the bundle holds no events")
    expected_prev, seen_leaves = ZERO_HASH, set()
    for number, event in enumerate(events, start=1):
        if not isinstance(event, dict):
            raise Unreadable(f"event {number} is not an object")
        where = f"event version {event.get('version')} (position {event.get('position')})"
        if problem := chain_problem(event, stream_id, number, expected_prev):
            failures.append(f"{where}: chain: {problem}")
        index = event.get("leaf_index")
        if not isinstance(index, int) or index in seen_leaves:
            failures.append(f"{where}: inclusion: no leaf index, or one another event of the bundle has")
        else:
            seen_leaves.add(index)
            leaf = leaf_hash(_hex32(event.get("hash"), f"{where}'s hash"))
            if not inclusion_verifies(
                leaf, index, checkpoint.size, _proof(event.get("inclusion_proof"), where), checkpoint.root
            ):
                failures.append(f"{where}: inclusion: not in the log at leaf {index} of the checkpoint's tree")
        stored_hash = event.get("hash")
        expected_prev = stored_hash if isinstance(stored_hash, str) else ZERO_HASH
    if saved is not None:
        failures.extend(_extension_failures(saved, checkpoint, key, bundle.get("consistency")))
    return len(events), failures


def _extension_failures(saved: Checkpoint, later: Checkpoint, key: VerifierKey, consistency: object) -> list[str]:
    if problem := saved.problem_with_signature(key):
        return [f"saved checkpoint: {problem}"]
    proof = None
    if isinstance(consistency, dict) and consistency.get("first") == saved.size:
        proof = _proof(consistency.get("proof"), "the consistency proof")
    if problem := extension_problem(saved, later, proof):
        return [f"consistency: {problem}"]
    return []


def verify_consistency_file(saved: Checkpoint, newer: dict, key: VerifierKey) -> list[str]:
    if newer.get("format") not in (CONSISTENCY_FORMAT, BUNDLE_FORMAT):
        raise Unreadable(f"not a consistency proof (format {CONSISTENCY_FORMAT!r} expected)")
    later = Checkpoint.parse(_text(newer.get("checkpoint"), "the later checkpoint"))
    failures = []
    if problem := later.problem_with_signature(key):
        failures.append(f"later checkpoint: {problem}")
    consistency = newer.get("consistency") if newer.get("format") == BUNDLE_FORMAT else newer
    return failures + _extension_failures(saved, later, key, consistency)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise Unreadable(f"{what} is missing")
    return value


# --------------------------------------------------------------------------- command line


def _read(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Unreadable(f"{path}: {exc}") from None


def _json(path: str) -> dict:
    try:
        content = json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise Unreadable(f"{path} is not JSON: {exc}") from None
    if not isinstance(content, dict):
        raise Unreadable(f"{path} is not a JSON object")
    return content


def _key(value: str) -> VerifierKey:
    path = Path(value)
    return VerifierKey.parse(path.read_text(encoding="utf-8") if "+" not in value and path.is_file() else value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    bundle = sub.add_parser("verify-bundle", help="a case bundle: chains, inclusion proofs, signature")
    bundle.add_argument("bundle")
    bundle.add_argument("--checkpoint", help="a checkpoint saved earlier, which the bundle's must extend")
    consistency = sub.add_parser("verify-consistency", help="a later checkpoint extends a saved one")
    consistency.add_argument("saved")
    consistency.add_argument("newer")
    checkpoint = sub.add_parser("verify-checkpoint", help="one checkpoint's signature")
    checkpoint.add_argument("checkpoint")
    for command in (bundle, consistency, checkpoint):
        command.add_argument("--key", required=True, help="the log's public key (name+keyid+base64), or a file")
    args = parser.parse_args(argv)
    try:
        key = _key(args.key)
        if args.command == "verify-bundle":
            saved = Checkpoint.parse(_read(args.checkpoint)) if args.checkpoint else None
            content = _json(args.bundle)
            count, failures = verify_bundle(content, key, saved)
            subject = f"{content.get('case_id')}: {count} events"
        elif args.command == "verify-consistency":
            saved = Checkpoint.parse(_read(args.saved))
            newer = _json(args.newer)
            failures = verify_consistency_file(saved, newer, key)
            subject = f"size {saved.size} to size {Checkpoint.parse(newer['checkpoint']).size}"
        else:
            single = Checkpoint.parse(_read(args.checkpoint))
            failures = [f"checkpoint: {p}"] if (p := single.problem_with_signature(key)) else []
            subject = f"{single.origin} at size {single.size}, root {single.root.hex()}"
    except Unreadable as exc:
        print(f"UNREADABLE {exc}", file=sys.stderr)
        return 2
    for failure in failures:
        print(f"FAILED {failure}")
    if failures:
        return 1
    print(f"OK {subject}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
