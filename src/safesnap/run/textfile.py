"""One metrics textfile, several writers: each rewrites only its own metric families.

node_exporter's textfile collector reads `[run] metrics_file` whole. A run writes the
`safesnap_run_*` families and a drill (weekly, often on its own) the `safesnap_drill_*` ones;
if either replaced the whole file, the alert "no drill succeeded for 8 days" would lose its
series every night. So each writer keeps every line of the other families, and may keep its
own older series (a drill of one target keeps the other targets' last results). Both writers
hold the destination's run lock, so they never race; the file is replaced atomically and a
scrape never sees half of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# `name{labels} value` or `name value`; comments `# HELP name ...` / `# TYPE name ...`.
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_COMMENT = re.compile(r"^#\s*(?:HELP|TYPE)\s+([A-Za-z_:][A-Za-z0-9_:]*)")


def _metric(line: str) -> str | None:
    match = _COMMENT.match(line) or _SAMPLE.match(line)
    return match.group(1) if match else None


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def own_samples(lines: Iterable[str], prefix: str) -> dict[str, str]:
    """{`name{labels}`: value} of the samples whose metric name starts with `prefix`."""
    out: dict[str, str] = {}
    for line in lines:
        match = _SAMPLE.match(line)
        if match and match.group(1).startswith(prefix):
            out[match.group(1) + (match.group(2) or "")] = match.group(3)
    return out


def rewrite(
    path: Path,
    prefix: str,
    families: Mapping[str, tuple[str, str]],
    samples: Mapping[str, str],
) -> None:
    """Replace the lines of metrics starting with `prefix` by `families` ({name: (type, help)})
    and `samples` ({`name{labels}`: value}), keeping every other line as it was."""
    from safesnap.artifacts.atomic import atomic_write

    others = [line for line in read_lines(path) if not (_metric(line) or "").startswith(prefix)]
    lines = [line for line in others if line.strip()]
    for name, (kind, help_text) in families.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(
            f"{series} {value}"
            for series, value in sorted(samples.items())
            if series.split("{", 1)[0] == name
        )
    with atomic_write(path, overwrite=True) as out:
        out.write(("\n".join(lines) + "\n").encode())
    # node_exporter runs as its own user and must read this; it holds no secrets.
    path.chmod(0o644)
