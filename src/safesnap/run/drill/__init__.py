"""Drills: restore each target's newest backup into a scratch place, check it, remove it.

core.py (the steps), checks.py (per engine), scratch.py (the scratch directory), volumes.py
(`--snapshots`), outputs.py (report file, metrics, state), hook.py (`[run] drill` cadence).
"""
