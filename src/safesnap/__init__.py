"""safesnap: application-consistent backups and cloud snapshots you can actually restore."""

# The one place the version is written: pyproject.toml reads it from here (hatch's version
# source), so `safesnap --version` needs no importlib.metadata (about 40 ms at startup).
__version__ = "0.1.0"
