"""Running the MySQL/MariaDB command-line clients safely: mariadb-dump out, mariadb in.

Credentials never reach argv (visible to every user in /proc/<pid>/cmdline) or the environment
(MYSQL_PWD is deprecated and readable in /proc/<pid>/environ by the same user): a client runs
with safesnap's environment minus the password variable, MYSQL_PWD and any variable holding the
password (`child_env`), which matters when the password was exported (systemd EnvironmentFile).
They go in an option file whose path is the FIRST argument (`--defaults-extra-file` is only
honoured there):

- locally, a 0600 temporary file, removed as soon as the client exits;
- through a `command_prefix` (e.g. `docker compose exec -T mysql`) a local path is not visible
  inside the container, so the client reads `/dev/stdin` instead and safesnap writes the option
  file into its stdin. The dump client reads nothing else from stdin, so this is safe for dumps;
  a load through a prefix needs stdin for the SQL, so it gets no option file and must rely on
  the container's own credentials (documented limitation, docs/how-to/mysql.md).
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, cast

from safesnap.config.targets import MysqlDumpOptions
from safesnap.engines.mysql.conn import ConnParams, ServerInfo
from safesnap.engines.mysql.dumpfile import RowCounter
from safesnap.errors import ConfigError, SourceError
from safesnap.output import log

_STDERR_LIMIT = 64 * 1024


def _escape(value: str) -> str:
    # Option-file values: double quotes allow any character, with \\ and \" escaped. A raw
    # newline or CR would end the line: the rest of a password would be read as an unknown
    # option and could be echoed in the client's error, so they go as the \n / \r escapes
    # the client reads back (checked against mariadb 10.11 with a real user).
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + out.replace("\n", "\\n").replace("\r", "\\r") + '"'


def option_file_text(params: ConnParams) -> str:
    lines = ["[client]", f"user={_escape(params.user)}"]
    if params.password is not None:
        lines.append(f"password={_escape(params.password.get_secret_value())}")
    if params.socket is not None:
        lines.append(f"socket={_escape(str(params.socket))}")
    else:
        lines += [f"host={_escape(params.host)}", f"port={params.port}"]
    tls = params.tls
    if tls is not None:
        lines += [f"ssl-ca={_escape(str(tls.ca))}"] if tls.ca else []
        lines += [f"ssl-cert={_escape(str(tls.cert))}"] if tls.cert else []
        lines += [f"ssl-key={_escape(str(tls.key))}"] if tls.key else []
        lines += ["ssl-verify-server-cert"] if tls.verify_identity else []
    return "\n".join(lines) + "\n"


def child_env(params: ConnParams | None) -> dict[str, str]:
    """The environment for a client process: ours without anything that carries the password."""
    secret = params.password.get_secret_value() if params and params.password else ""
    drop = {"MYSQL_PWD"}
    if params is not None and params.password_env:
        drop.add(params.password_env)
    return {k: v for k, v in os.environ.items() if k not in drop and not (secret and v == secret)}


@contextmanager
def option_file(params: ConnParams, *, via_stdin: bool) -> Iterator[tuple[str, bytes | None]]:
    """Yield (first argv element, bytes to write to the child's stdin or None)."""
    text = option_file_text(params).encode()
    if via_stdin:
        yield "--defaults-extra-file=/dev/stdin", text
        return
    sweep_option_files()
    fd, name = tempfile.mkstemp(prefix=OPTION_FILE_PREFIX, suffix=".cnf")  # mode 0600
    try:
        # Held for the file's life: a sweeper tells a live run's file from a killed one's.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, text)
        yield f"--defaults-extra-file={name}", None
    finally:
        with suppress(FileNotFoundError):
            os.unlink(name)
        os.close(fd)


OPTION_FILE_PREFIX = "safesnap-my-"


def sweep_option_files(directory: Path | None = None, min_age: float = 60.0) -> list[Path]:
    """Remove option files (they hold the password) that a SIGKILLed run left in the temp
    directory: every `safesnap-my-*.cnf` whose flock no live process holds. SIGTERM/SIGINT
    already remove them on the way out; this catches kill -9 and the OOM killer."""
    removed: list[Path] = []
    now = time.time()
    for path in (directory or Path(tempfile.gettempdir())).glob(f"{OPTION_FILE_PREFIX}*.cnf"):
        with suppress(OSError):
            if now - path.lstat().st_mtime < min_age:
                continue  # a writer may be between mkstemp and its flock
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # gone meanwhile, a symlink, or not ours to open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live run holds it
        finally:
            os.close(fd)
        with suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    if removed:
        log.info("removed %d MySQL option file(s) left by a killed run", len(removed))
    return removed


def client_program(
    kind: str, configured: str | None, prefix: Sequence[str], server: ServerInfo
) -> str:
    """`kind` is 'dump' or 'load'. Prefer the server's own flavour of client; with a prefix the
    program runs elsewhere, so it is named, not looked up."""
    if configured:
        return configured
    mariadb, mysql = ("mariadb-dump", "mysqldump") if kind == "dump" else ("mariadb", "mysql")
    order = (mariadb, mysql) if server.flavor == "mariadb" else (mysql, mariadb)
    if prefix:
        return order[0]
    for name in order:
        if shutil.which(name):
            return name
    raise ConfigError(
        f"neither {mariadb} nor {mysql} found on PATH",
        hint="Install the MariaDB/MySQL client, or set dump.client / dump.command_prefix.",
    )


def dump_args(opts: MysqlDumpOptions, databases: Sequence[str]) -> list[str]:
    """Arguments after the option file. --databases with --no-create-db: one snapshot for all
    databases, `USE` lines mark each section, no CREATE DATABASE so any name can be restored."""
    flags = [
        "--single-transaction",
        "--quick",
        "--hex-blob",
        "--no-create-db",
        "--no-tablespaces",  # MySQL 8 needs PROCESS for tablespaces; a restore never does
        "--default-character-set=utf8mb4",
        "--routines" if opts.routines else "--skip-routines",
        "--triggers" if opts.triggers else "--skip-triggers",
        "--events" if opts.events else "--skip-events",
        *opts.extra_args,
        "--databases",
        "--",
    ]
    return flags + list(databases)


class _Stderr:
    """Drain a child's stderr on a thread (a full pipe would stall the child), keep the start."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.data = b""
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[bytes]) -> None:
        while chunk := stream.read(8192):
            if len(self.data) < _STDERR_LIMIT:
                self.data += chunk

    def text(self, secret: str | None) -> str:
        self._thread.join(timeout=5)
        text = self.data.decode("utf-8", "replace").strip()
        if secret:
            text = text.replace(secret, "***")  # belt and braces: clients never echo it
        return text[-2000:]


class DumpStream(io.RawIOBase):
    """The dump client's stdout as a readable stream that counts rows on the way and, at EOF,
    raises SourceError if the client failed or the dump is incomplete, so write_artifact
    discards its temporary file instead of publishing a truncated dump."""

    def __init__(
        self, proc: subprocess.Popen[bytes], counter: RowCounter, describe: Callable[[], str]
    ) -> None:
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._proc = proc
        self._out = cast(io.BufferedReader, proc.stdout)
        self._err = _Stderr(proc.stderr)
        self._counter = counter
        self._describe = describe
        self.secret: str | None = None
        self.on_complete: Callable[[], None] | None = None
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._out.read1(len(view))
        if not data:
            self._finish()
            return 0
        self._counter.feed(data)
        view[: len(data)] = data
        return len(data)

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._counter.close()
        code = self._proc.wait()
        if code != 0 or not self._counter.completed:
            why = f"exited with status {code}" if code else "stopped before the end of the dump"
            detail = self._err.text(self.secret)
            raise SourceError(
                f"{self._describe()} {why}" + (f": {detail}" if detail else ""),
                hint="Nothing was written. Check the database names, the user's privileges "
                "(SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES) and the client's message.",
            )
        if self.on_complete is not None:
            self.on_complete()

    def abort(self) -> None:
        """Stop the child if the reader gave up early (destination full, Ctrl-C)."""
        if self._proc.poll() is None:
            self._proc.kill()
        with suppress(Exception):
            self._proc.wait(timeout=10)


@contextmanager
def run_dump(
    params: ConnParams,
    argv_tail: list[str],
    program: str,
    prefix: Sequence[str],
    counter: RowCounter,
    *,
    on_complete: Callable[[], None] | None = None,
) -> Iterator[DumpStream]:
    """Start `prefix + program --defaults-extra-file=... argv_tail`; yield its checked stdout."""
    via_stdin = bool(prefix)
    with option_file(params, via_stdin=via_stdin) as (first, stdin_data):
        argv = [*prefix, program, first, *argv_tail]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=child_env(params),
            )
        except OSError as exc:
            raise ConfigError(f"cannot run {argv[0]}: {exc.strerror}") from None
        if stdin_data is not None and proc.stdin is not None:
            _feed_and_close(proc.stdin, stdin_data)
        stream = DumpStream(proc, counter, lambda: " ".join([*prefix, program]))
        stream.secret = params.password.get_secret_value() if params.password else None
        stream.on_complete = on_complete
        try:
            yield stream
        finally:
            stream.abort()


def _feed_and_close(stdin: IO[bytes], data: bytes) -> None:
    # A few hundred bytes fit in the pipe buffer, so this never blocks on a child that has not
    # started reading yet; a child that died already gives BrokenPipe, reported at EOF instead.
    with suppress(BrokenPipeError):
        stdin.write(data)
    with suppress(BrokenPipeError):
        stdin.close()


def run_load(
    params: ConnParams,
    program: str,
    prefix: Sequence[str],
    chunks: Iterator[bytes],
) -> None:
    """Pipe SQL chunks into `program` (mariadb/mysql); SourceError with its message on failure."""
    if prefix:
        # stdin carries the SQL here, so credentials must come from the container (see top).
        cm: Any = _no_option_file()
    else:
        cm = option_file(params, via_stdin=False)
    with cm as (first, _):
        argv = [*prefix, program, *([first] if first else []), "--binary-mode", "--batch"]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=child_env(params),
            )
        except OSError as exc:
            raise ConfigError(f"cannot run {argv[0]}: {exc.strerror}") from None
        assert proc.stdin is not None
        assert proc.stderr is not None
        err = _Stderr(proc.stderr)
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the client stopped reading: its exit status and stderr say why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
    if code != 0:
        secret = params.password.get_secret_value() if params.password else None
        raise SourceError(f"{program} failed loading the dump (status {code}): {err.text(secret)}")


@contextmanager
def _no_option_file() -> Iterator[tuple[str, None]]:
    yield "", None


def client_version(
    program: str, prefix: Sequence[str], params: ConnParams | None = None
) -> str | None:
    """`mariadb-dump --version` for the manifest; None when it cannot be run."""
    try:
        done = subprocess.run(
            [*prefix, program, "--version"],
            capture_output=True,
            timeout=20,
            check=False,
            env=child_env(params),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace").strip() or None
