"""This repository's own test runs: on every core when pytest-xdist is installed, in one process when not.

`-n auto` cannot sit in pyproject's addopts: without pytest-xdist (`pip install -e . pytest`), pytest
refuses the unknown option before running anything.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # Runs before xdist's own tryfirst hook (a conftest registers after installed plugins), which turns
    # `auto` into a number of workers. Not in a worker: a worker must not start workers of its own.
    if (
        config.pluginmanager.hasplugin("xdist")
        and getattr(config.option, "numprocesses", 0) is None
        and not hasattr(config, "workerinput")
    ):
        config.option.numprocesses = "auto"
