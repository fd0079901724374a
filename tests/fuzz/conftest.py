"""Hypothesis profiles for the fuzz tier.

``ci`` (the default): a few hundred examples per input surface, derandomized so a CI run
repeats exactly and a red one can be rerun. ``full`` (``nox -s fuzz``): 10,000 examples
per surface, random, shrinking kept, so each run explores new ground. Neither has a
deadline: a slow example on a loaded machine is not a bug; a hang is, and every test bounds
its I/O with a timeout of its own.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Each surface's test shares one app or server across its examples on purpose (starting
# one per example would fuzz start-up, not input handling), hence function_scoped_fixture.
_SHARED = (HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large)

settings.register_profile(
    "ci", max_examples=300, deadline=None, derandomize=True, suppress_health_check=_SHARED
)
settings.register_profile(
    "full", max_examples=10_000, deadline=None, suppress_health_check=_SHARED, print_blob=True
)
# The command line's --hypothesis-profile wins: the plugin loads it after this file.
settings.load_profile("ci")
