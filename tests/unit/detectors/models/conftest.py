"""The model tests run torch on one intra-op thread (see ``one_torch_thread``)."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test of this folder, as before the move: one thread from the first test on."""
