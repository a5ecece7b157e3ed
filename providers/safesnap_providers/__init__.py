"""Snapshot providers: one adapter per cloud behind one Protocol (see base.py, registry.py)."""
