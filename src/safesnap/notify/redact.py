"""Keep a URL's secrets out of every message about it.

A notification URL is a credential in most services (Slack and Discord webhook paths, a
Telegram bot token in the host part, an ntfy or Matrix token in the query, a password in the
userinfo). Library messages about a failed delivery quote the URL or parts of it
(`HTTPConnectionPool(host=..., port=...): Max retries exceeded with url: /TOKEN/fail`), so
every text that leaves this package goes through `redact` first, and channels are named by
their plan entry and scheme only.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"
_MIN_SECRET = 3  # shorter pieces ("/", "v1", ports) would mangle the message and hide nothing


def secret_pieces(url: str) -> list[str]:
    """The parts of `url` that may be a secret, longest first (so no piece hides half another)."""
    parts = urlsplit(url)
    pieces = {url, parts.netloc, parts.path, parts.query, parts.fragment}
    pieces.update(filter(None, (parts.username, parts.password, parts.hostname)))
    pieces.update(parts.path.split("/"))
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        pieces.update((key + "=" + value, value))
    pieces.update({unquote(piece) for piece in pieces})
    return sorted((p for p in pieces if len(p) >= _MIN_SECRET), key=len, reverse=True)


def redact(text: str, *urls: str) -> str:
    """`text` with every secret-looking piece of `urls` replaced by ***."""
    for url in urls:
        for piece in secret_pieces(url):
            text = text.replace(piece, MASK)
    return text


def scheme_of(url: str) -> str:
    """`json`, `tgram`, `https`...: safe to show, says which service it is."""
    scheme = urlsplit(url).scheme
    return scheme if scheme.isalnum() else "?"
