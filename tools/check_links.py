"""Check the relative links and anchors of Markdown files (run by .ci/run).

markdownlint checks fragments inside one file (MD051) but not links between files, and no
npm link checker works offline without fetching external URLs. This script checks what a
reader of the repository would follow: every relative link points at a file or directory that
exists, and every `#fragment` names a heading (GitHub's slug rules) or an explicit
`<a id="...">` / `<a name="...">` in the target Markdown file. External links (any scheme:
http, https, mailto) are not fetched.

Usage: python3 tools/check_links.py [PATH ...]   (files or directories; default: the repo)
Exit status: 0 when every link resolves, 1 when any is broken (each printed as file:line).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote

# Directories never holding the project's own docs: tool caches, venvs, installed packages.
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "build", "dist"})
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
# [text](target) or ![alt](target), target optionally in <...>, optional "title".
INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ANCHOR = re.compile(r"<a\s[^>]*?(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Broken:
    """One link that does not resolve."""

    file: Path
    line: int
    target: str
    reason: str

    def __str__(self) -> str:
        shown = (
            self.file.relative_to(Path.cwd()) if self.file.is_relative_to(Path.cwd()) else self.file
        )
        return f"{shown}:{self.line}: {self.target}: {self.reason}"


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) outside fenced code blocks, code spans blanked out."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None:
            if closes(fence, line, match):
                fence = None
        else:
            yield number, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def closes(fence: str, line: str, match: re.Match[str] | None) -> bool:
    """A fence closes with the same character, at least as long, and nothing after it."""
    if match is None or match.group(1)[0] != fence[0] or len(match.group(1)) < len(fence):
        return False
    return not line.strip().strip(fence[0])


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation dropped."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML renders no text of its own
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and underscores
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every fragment a link may use to reach a place in the Markdown file at path."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    text = path.read_text(encoding="utf-8")
    for _, line in prose_lines(text):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(1))
        # GitHub numbers repeated headings: intro, intro-1, intro-2.
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def link_targets(text: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, target) for every inline link and reference definition."""
    for number, line in prose_lines(text):
        targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
        definition = REFERENCE_DEF.match(line)
        if definition:
            targets.append(definition.group(1))
        for target in targets:
            yield number, target.removeprefix("<").removesuffix(">")


def check_target(source: Path, target: str) -> str | None:
    """Why target (as written in source) does not resolve, or None when it does."""
    if SCHEME.match(target) or target.startswith("//"):
        return None  # external: not fetched
    path_part, _, fragment = target.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    resolved = (source.parent / path_part).resolve() if path_part else source.resolve()
    if not resolved.exists():
        return "no such file or directory"
    if not fragment:
        return None
    if resolved.is_dir() or resolved.suffix.lower() != ".md":
        return None  # GitHub line anchors (#L10) and the like: not checked
    if unquote(fragment).lower() not in anchors(resolved):
        return f"no heading or anchor '#{fragment}' in {resolved.name}"
    return None


def check_file(path: Path) -> list[Broken]:
    """Every broken relative link or anchor in one Markdown file."""
    broken = []
    for line, target in link_targets(path.read_text(encoding="utf-8")):
        reason = check_target(path, target)
        if reason is not None:
            broken.append(Broken(path, line, target, reason))
    return broken


def markdown_files(roots: list[Path]) -> Iterator[Path]:
    """The Markdown files named or under the given directories, hidden and tool dirs skipped."""
    for root in roots:
        if root.is_file():
            yield root
            continue
        for path in sorted(root.rglob("*.md")):
            parts = path.relative_to(root).parts[:-1]
            if not any(p.startswith(".") or p in SKIP_DIRS for p in parts):
                yield path


def main(argv: list[str]) -> int:
    """Check the given paths (default: the repository); print broken links; 1 if any."""
    roots = [Path(a) for a in argv] or [Path(__file__).resolve().parent.parent]
    missing = [r for r in roots if not r.exists()]
    if missing:
        print(f"check_links: no such path: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    files = list(markdown_files(roots))
    broken = [b for f in files for b in check_file(f)]
    for item in broken:
        print(item)
    print(f"check_links: {len(files)} files, {len(broken)} broken link(s)", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
