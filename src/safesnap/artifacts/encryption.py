"""age encryption of artifacts (the `pyrage` binding of the Rust age library).

The plan holds only public recipients (`age1...`); the identity (the secret key) lives where
restores happen, never on the host being backed up. The stored form is the standard age format,
so `age --decrypt -i key.txt` can open an artifact by hand.

Both directions stream: `pyrage.encrypt_io` / `decrypt_io` read and write Python file objects
in pieces (measured with pyrage 1.4: 8 KiB reads, writes of at most 64 KiB + tag), so memory
stays bounded whatever the artifact's size. pyrage is imported inside the functions: a plan
without `[encryption]` never loads it, and neither does `safesnap backup sqlite`.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from safesnap.errors import ConfigError, DecryptionError

AGE_MAGIC = b"age-encryption.org/v1\n"  # the first bytes of every age file (age spec)
IDENTITY_ENV = "SAFESNAP_AGE_IDENTITY_FILE"
ENCRYPTED_SUFFIX = ".age"
# An X25519 recipient: "age1" + bech32 data (58 characters for the 32-byte key).
RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
_KEEP_IDENTITY_AWAY = (
    "Keep the identity off the host being backed up; see docs/how-to/encryption.md."
)


def parse_recipients(recipients: Sequence[str]) -> list[Any]:
    """pyrage recipients from the plan's public keys; ConfigError naming a bad one."""
    from pyrage import x25519  # type: ignore[import-untyped]

    parsed = []
    for text in recipients:
        try:
            parsed.append(x25519.Recipient.from_str(text.strip()))
        except Exception:  # pyrage raises ValueError or RecipientError, by version
            raise ConfigError(
                f"encryption.recipients: {text!r} is not an age public key (age1...)",
                hint="Generate one with `age-keygen` and copy its public key line.",
            ) from None
    if not parsed:
        raise ConfigError("encryption.recipients is empty: nothing could decrypt the artifacts")
    return parsed


def identity_path(given: Path | None) -> Path | None:
    """--identity, else $SAFESNAP_AGE_IDENTITY_FILE, else None."""
    if given is not None:
        return given
    env = os.environ.get(IDENTITY_ENV)
    return Path(env) if env else None


def load_identities(given: Path | None, *, artifact: str) -> list[Any]:
    """The X25519 identities of an age identity file (`age-keygen` output: comments and
    `AGE-SECRET-KEY-1...` lines). Errors name the file, never a key."""
    from pyrage import x25519

    path = identity_path(given)
    if path is None:
        raise DecryptionError(
            f"{artifact} is encrypted and no identity was given",
            hint=f"Pass --identity FILE or set {IDENTITY_ENV}. {_KEEP_IDENTITY_AWAY}",
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise DecryptionError(f"cannot read the identity file {path}: {reason}") from None
    identities = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            identities.append(x25519.Identity.from_str(text))
        except Exception:  # the error text of pyrage could echo the key: say only where
            raise DecryptionError(
                f"{path}: line {number} is not an age identity (AGE-SECRET-KEY-1...)"
            ) from None
    if not identities:
        raise DecryptionError(f"{path} holds no age identity (AGE-SECRET-KEY-1... line)")
    return identities


def encrypt_stream(source: IO[bytes], sink: IO[bytes], recipients: Sequence[Any]) -> None:
    """Encrypt `source` into `sink` in pieces (bounded memory)."""
    import pyrage

    pyrage.encrypt_io(source, sink, list(recipients))


def decrypt_stream(
    source: IO[bytes], sink: IO[bytes], identities: Sequence[Any], *, artifact: str
) -> None:
    """Decrypt `source` into `sink` in pieces; DecryptionError when it cannot."""
    import pyrage

    try:
        pyrage.decrypt_io(source, _GuardedSink(sink), list(identities))
    except _SinkFailed as exc:
        raise exc.original from None  # the destination's error (ENOSPC...), for the caller
    except OSError as exc:  # pyrage reports a damaged chunk as OSError("decryption error")
        raise DecryptionError(
            f"{artifact}: the encrypted data is damaged ({exc})",
            hint="Restore another artifact (safesnap list --replica NAME).",
        ) from None
    except pyrage.DecryptError as exc:
        if "no matching keys" in str(exc).lower():
            raise DecryptionError(
                f"{artifact}: the identity does not match any recipient of this artifact",
                hint="Use the identity whose public key was in [encryption] recipients "
                "when the artifact was made (rotation keeps old artifacts on their old keys).",
            ) from None
        raise DecryptionError(
            f"{artifact}: the encrypted data is damaged or not age ({exc})",
            hint="Restore another artifact (safesnap list --replica NAME).",
        ) from None


class _SinkFailed(Exception):
    def __init__(self, original: OSError) -> None:
        super().__init__(str(original))
        self.original = original


class _GuardedSink(io.RawIOBase):
    """Tells the sink's OSErrors apart from pyrage's (it raises OSError for bad ciphertext;
    Python exceptions from write() pass through pyrage unchanged, checked on 1.4.0)."""

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            self._sink.write(data)
        except OSError as exc:
            raise _SinkFailed(exc) from exc
        return memoryview(data).nbytes
