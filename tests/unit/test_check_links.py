"""tools/check_links.py: relative links and anchors between real Markdown files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.check_links import anchors, check_file, main, slug

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "check_links.py"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_slug_follows_github_rules() -> None:
    assert slug("MySQL / MariaDB") == "mysql--mariadb"
    assert slug("Temp files, the sweep and signals") == "temp-files-the-sweep-and-signals"
    assert slug("4. Restore") == "4-restore"
    assert slug("`safesnap run` and [links](x.md)") == "safesnap-run-and-links"
    assert slug("keep_daily *counts*") == "keep_daily-counts"


def test_repeated_headings_and_html_anchors(tmp_path: Path) -> None:
    page = write(tmp_path / "p.md", '# Intro\n\n## Intro\n\n<a id="custom"></a>\n\n## Intro\n')
    assert anchors(page) == {"intro", "intro-1", "intro-2", "custom"}


def test_good_links_pass(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "ref.md", "# Reference\n\n## Exit codes\n")
    write(tmp_path / "docs" / "img.png", "x")
    page = write(
        tmp_path / "docs" / "how" / "page.md",
        "# Page\n\n## Local part\n\n"
        "See [codes](../ref.md#exit-codes), [here](#local-part), [dir](../),\n"
        '![pic](<../img.png> "title"), [web](https://example.com/x.md#nope).\n\n'
        "[def]: ../ref.md#reference\n",
    )
    assert check_file(page) == []


def test_missing_file_and_anchor_reported_with_line(tmp_path: Path) -> None:
    write(tmp_path / "ref.md", "# Reference\n")
    page = write(
        tmp_path / "page.md",
        "# Page\n\n[gone](missing.md)\n[bad](ref.md#nowhere)\n[self](#nope)\n",
    )
    broken = check_file(page)
    assert [(b.line, b.target) for b in broken] == [
        (3, "missing.md"),
        (4, "ref.md#nowhere"),
        (5, "#nope"),
    ]
    assert "no such file" in broken[0].reason
    assert "#nowhere" in broken[1].reason


def test_links_in_code_are_not_links(tmp_path: Path) -> None:
    page = write(
        tmp_path / "page.md",
        "# Page\n\n`[a](missing.md)`\n\n```markdown\n[b](missing.md)\n# Not a heading\n```\n",
    )
    assert check_file(page) == []
    assert anchors(page) == {"page"}


def test_hidden_and_tool_directories_skipped(tmp_path: Path) -> None:
    write(tmp_path / "node_modules" / "pkg" / "README.md", "[x](missing.md)\n")
    write(tmp_path / ".venv" / "README.md", "[x](missing.md)\n")
    write(tmp_path / "ok.md", "# Ok\n")
    assert main([str(tmp_path)]) == 0


def test_command_line_exit_status_and_output(tmp_path: Path) -> None:
    write(tmp_path / "page.md", "# Page\n\n[gone](missing.md)\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 1
    assert "page.md:3: missing.md: no such file or directory" in done.stdout
    assert "1 broken link(s)" in done.stderr


def test_missing_path_argument_is_a_usage_error(tmp_path: Path) -> None:
    assert main([str(tmp_path / "absent")]) == 2
