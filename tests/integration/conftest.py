"""Integration fixtures: a fast-ticking simulator on loopback (see fastsim.FAST for the settings that suit it)."""

from fastsim import run, sim  # noqa: F401  (fixtures)
