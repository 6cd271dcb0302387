"""Fixtures of the engine tests; the state builders live in engine_helpers.py."""
import pytest

from engine_helpers import MODES


@pytest.fixture(params=MODES)
def mode(request):
    """The leader-id mode: "adv" (term, node) totally ordered, or "std" (one leader per term)."""
    return request.param
