"""The log's signing key: generated, read from a file or the environment (never the database), and used to
sign C2SP tlog-checkpoints as signed notes.

Key text formats are the signed-note ones (as Go's ``golang.org/x/mod/sumdb/note`` writes them):
* signer (secret): ``PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || 32-byte Ed25519 seed)>``;
* verifier (public): ``<name>+<key id hex>+<base64(0x01 || 32-byte public key)>``.
The key name is the log's origin line. ``ESCALATIONS_LOG_KEY`` holds the signer text, or
``ESCALATIONS_LOG_KEY_FILE`` names a file holding it.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scripts.verify_bundle import ED25519, VerifierKey, key_id_of

DEFAULT_ORIGIN = "escalations.example/log"
KEY_ENV = "ESCALATIONS_LOG_KEY"
KEY_FILE_ENV = "ESCALATIONS_LOG_KEY_FILE"


class SigningKeyError(ValueError):
    """The signing key text or file is unusable; the message names the rule."""


@dataclass(frozen=True)
class LogSigner:
    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str = DEFAULT_ORIGIN) -> LogSigner:
        if not name or any(c.isspace() or c == "+" for c in name):
            raise SigningKeyError(f'rule "log.key_name": {name!r} must be non-empty, without spaces or "+"')
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, text: str) -> LogSigner:
        parts = text.strip().split("+", 4)  # base64 may hold "+"; a name and a key id never do
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not parts[2]:
            raise SigningKeyError('rule "log.key_format": a signing key is PRIVATE+KEY+name+keyid+base64')
        name, id_hex, encoded = parts[2:]
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise SigningKeyError('rule "log.key_format": the signing key is not base64') from None
        if len(raw) != 33 or raw[0] != ED25519:
            raise SigningKeyError('rule "log.key_format": not an Ed25519 key (type 0x01, 32-byte seed)')
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.key_id.hex() != id_hex.lower():
            raise SigningKeyError('rule "log.key_format": the key id does not match the name and key')
        return signer

    @property
    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes_raw()

    @property
    def key_id(self) -> bytes:
        return key_id_of(self.name, self.public_bytes)

    def text(self) -> str:
        seed = self.private_key.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([ED25519]) + seed).decode()}"

    def verifier(self) -> VerifierKey:
        return VerifierKey(self.name, self.key_id, self.public_bytes)

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([ED25519]) + self.public_bytes).decode()}"

    def sign_checkpoint(self, size: int, root: bytes) -> str:
        """The checkpoint for a tree of ``size`` leaves with root ``root``, as a signed note."""
        text = f"{self.name}\n{size}\n{base64.b64encode(root).decode()}\n"
        signature = self.key_id + self.private_key.sign(text.encode())
        return f"{text}\n\u2014 {self.name} {base64.b64encode(signature).decode()}\n"


def signer_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> LogSigner | None:
    """The signer configured by ``ESCALATIONS_LOG_KEY`` or ``ESCALATIONS_LOG_KEY_FILE``; None when neither is
    set (the log is kept, but no checkpoint is signed). ``SigningKeyError`` for an unusable one."""
    env = os.environ if environ is None else environ
    if text := env.get(KEY_ENV):
        return LogSigner.parse(text)
    if path := env.get(KEY_FILE_ENV):
        try:
            return LogSigner.parse(Path(path).read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError) as exc:
            raise SigningKeyError(f'rule "log.key_file": {path}: {exc}') from None
    return None


def write_new_key(path: Path, name: str = DEFAULT_ORIGIN) -> LogSigner:
    """Generate a key and write it to ``path``, readable by its owner only."""
    signer = LogSigner.generate(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(signer.text() + "\n")
    return signer
