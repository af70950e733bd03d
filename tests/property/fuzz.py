"""Shared pieces of the fuzz tests (``tests/property/test_fuzz_*.py``; registered by
``tests/conftest.py`` as ``twin_fuzz``): the check that a failure is one of ours, a wall-clock
guard against hangs, and the example budgets.

Every fuzz target feeds generated input to one entry point and asserts that it either works
or raises a :class:`twin.errors.TwinError` (the documented ``TypeError`` of a wrong Python
type included where the target says so): never another exception, never a hang. CI runs a
fixed-seed, bounded set (``derandomize``: the same examples on every run); ``--runslow`` runs
the larger campaign whose size ``docs/reliability.md`` records.
"""

import contextlib
import signal

from hypothesis import HealthCheck, settings

from twin.errors import TwinError

#: Examples per target in CI (derandomized) and in the ``--runslow`` campaign.
CI_EXAMPLES = 60
CAMPAIGN_EXAMPLES = 1500
#: Seconds one example may take before it counts as a hang.
HANG_S = 30


def ci_settings(n=CI_EXAMPLES):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def campaign_settings(n=CAMPAIGN_EXAMPLES):
    return settings(max_examples=n, deadline=None, derandomize=False, database=None,
                    suppress_health_check=list(HealthCheck))


class Hang(Exception):
    """An example ran past :data:`HANG_S`."""


@contextlib.contextmanager
def guard(seconds=HANG_S):
    """Fail with :class:`Hang` when the block runs longer than ``seconds`` (SIGALRM; main thread)."""
    def _raise(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def ours(fn, *args, allow_type_error=False, **kwargs):
    """Call ``fn``: its value, or None when it raised a :class:`TwinError` (or, with
    ``allow_type_error``, a ``TypeError``); any other exception fails the example with what
    was raised and for which input."""
    with guard():
        try:
            return fn(*args, **kwargs)
        except TwinError:
            return None
        except TypeError:
            if allow_type_error:
                return None
            raise
