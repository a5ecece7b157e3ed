"""safesnap: application-consistent backups and cloud snapshots you can actually restore."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("safesnap")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
