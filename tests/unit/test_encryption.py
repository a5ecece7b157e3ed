"""age encryption helpers: identity files as age-keygen writes them, errors that name files and
never keys, recipients checked in the plan, and streaming both ways."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from tests.fixtures.replicas import make_age_key

from safesnap.artifacts.encryption import (
    AGE_MAGIC,
    decrypt_stream,
    encrypt_stream,
    load_identities,
    parse_recipients,
)
from safesnap.config.plan import load_plan
from safesnap.errors import ConfigError, DecryptionError


def test_round_trip_streams_and_starts_with_the_age_header(tmp_path: Path) -> None:
    key = make_age_key(tmp_path / "k")
    plain = bytes(range(256)) * 5000  # 1.25 MiB: several 64 KiB age chunks
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(plain), sealed, parse_recipients([key.recipient]))
    assert sealed.getvalue().startswith(AGE_MAGIC)
    out = io.BytesIO()
    sealed.seek(0)
    decrypt_stream(sealed, out, load_identities(key.identity_file, artifact="a"), artifact="a")
    assert out.getvalue() == plain


def test_identity_file_errors_name_the_file_never_the_key(tmp_path: Path) -> None:
    secret_like = "AGE-SECRET-KEY-1NOTAREALKEYBUTLOOKSLIKEONE"
    bad = tmp_path / "bad.key"
    bad.write_text(f"# comment\n{secret_like}\n")
    with pytest.raises(DecryptionError) as info:
        load_identities(bad, artifact="a")
    assert "line 2" in info.value.message
    assert secret_like not in info.value.message
    empty = tmp_path / "empty.key"
    empty.write_text("# only a comment\n")
    with pytest.raises(DecryptionError, match="holds no age identity"):
        load_identities(empty, artifact="a")
    with pytest.raises(DecryptionError, match="cannot read the identity file"):
        load_identities(tmp_path / "missing.key", artifact="a")


def test_no_identity_anywhere_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFESNAP_AGE_IDENTITY_FILE", raising=False)
    with pytest.raises(DecryptionError) as info:
        load_identities(None, artifact="tracker.x.sqlite.zst")
    assert "SAFESNAP_AGE_IDENTITY_FILE" in (info.value.hint or "")


def test_damaged_ciphertext_is_a_decryption_error(tmp_path: Path) -> None:
    key = make_age_key(tmp_path / "k")
    sealed = bytearray()
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(b"x" * 200_000), out, parse_recipients([key.recipient]))
    sealed[:] = out.getvalue()
    sealed[-10] ^= 0xFF
    with pytest.raises(DecryptionError, match="damaged"):
        decrypt_stream(
            io.BytesIO(bytes(sealed)),
            io.BytesIO(),
            load_identities(key.identity_file, artifact="a"),
            artifact="a",
        )


def test_a_full_disk_while_decrypting_stays_an_os_error(tmp_path: Path) -> None:
    key = make_age_key(tmp_path / "k")
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(b"x" * 200_000), out, parse_recipients([key.recipient]))

    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        decrypt_stream(
            io.BytesIO(out.getvalue()),
            Full(),
            load_identities(key.identity_file, artifact="a"),
            artifact="a",
        )


def test_plan_rejects_a_recipient_that_is_not_an_age_key(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[destination]\npath = "/tmp/x"\n'
        '[encryption]\nrecipients = ["ssh-rsa AAAA", "AGE-SECRET-KEY-1ABC"]\n'
        '[[targets]]\nname = "t"\nengine = "sqlite"\npath = "/tmp/t.db"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_plan(plan)
    assert any("encryption.recipients" in p for p in info.value.problems)


def test_plan_accepts_age_keys_and_replica_options(tmp_path: Path) -> None:
    key = make_age_key(tmp_path / "k")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[destination]\npath = "/tmp/x"\n'
        f'[encryption]\nrecipients = ["{key.recipient}"]\n'
        '[[targets]]\nname = "t"\nengine = "sqlite"\npath = "/tmp/t.db"\n'
        '[[replicas]]\nname = "dr"\nbucket = "b"\naddressing_style = "path"\n'
        "retention = { keep_last = 2 }\n"
    )
    loaded = load_plan(plan)
    assert loaded.encryption is not None
    assert loaded.encryption.recipients == [key.recipient]
    replica = loaded.replicas[0]
    assert replica.addressing_style == "path"
    assert replica.retention is not None
    assert replica.retention.keep_last == 2
