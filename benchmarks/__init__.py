"""Reproducible performance runs of the emulator against a bare aiohttp app (not part of the test suite).

Run `python -m benchmarks` (see benchmarks/README.md). This package stays import-free so that
`python -m benchmarks.floor` starts as lean as a bare aiohttp app can.
"""
