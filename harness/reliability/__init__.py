"""The reliability report: the named reliability scenarios and one table of what each held.

For every run: the load held, the faults injected, how soon the system recovered from
each, and what was lost, duplicated or left of unknown outcome (all of which must be 0).
``run`` runs them and writes the table (``nox -s reliability``); ``rows`` derives a row
from a run's result, with the definitions of recovery; ``facts`` is what the runner
gathers into every result for it; ``render`` writes the Markdown; ``readme`` puts it into
the README between its markers.

Nothing is imported here: the runner imports ``facts``, and ``run`` imports the runner.
"""
