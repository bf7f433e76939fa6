"""Shared test configuration: hypothesis profiles and the `--device` option.

The "default" profile is derandomized: every run draws the same examples (a seed derived
from each test), so a pass or a failure does not depend on luck or on a local example
database. The "thorough" profile (`SOFTMETRICS_PROFILE=thorough`) draws fresh random
examples, more of them, for exploring; CI runs the hypothesis tests with it after the slow
tests, from a seed it prints (`--hypothesis-seed`), so a failure there can be replayed.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("SOFTMETRICS_EXAMPLES", "40")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=int(os.environ.get("SOFTMETRICS_EXAMPLES", "1000")),
    derandomize=False,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("SOFTMETRICS_PROFILE", "default"))

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def pytest_addoption(parser):
    parser.addoption("--device", action="store", default="cpu",
                     help="device the tests run on: cpu (default), cuda, cuda:1, ...")
    parser.addoption("--device-tests-only", action="store_true", default=False,
                     help="keep only the tests that take the `device` fixture (the others "
                          "run on the CPU whatever --device says)")


# torch.compile of the losses needs their custom operators (`torch.library.custom_op`,
# torch 2.4 and later); torch 2.1 to 2.3 run them eagerly only (see Conventions in the docs)
COMPILES = hasattr(torch.library, "custom_op")


def pytest_collection_modifyitems(config, items):
    """Tests marked `compile` skip on a torch that cannot compile the losses.
    `--device-tests-only`: deselect every test that does not take the `device` fixture,
    so that a GPU run spends its time on the tests that use the GPU."""
    if not COMPILES:
        skip = pytest.mark.skip(reason=f"torch {torch.__version__} has no custom operators: "
                                       "the losses compile from torch 2.4")
        for item in items:
            if "compile" in item.keywords:
                item.add_marker(skip)
    if not config.getoption("--device-tests-only"):
        return
    kept, dropped = [], []
    for item in items:
        (kept if "device" in getattr(item, "fixturenames", ()) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    """The device under test (`pytest --device cuda`); skips when it is not available."""
    dev = torch.device(request.config.getoption("--device"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    return dev


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny tensors: a second thread only adds
    synchronisation, which stalls badly when the cores are busy with other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
