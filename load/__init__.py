"""Squall's load tier: Locust users, load shapes and thresholds against any gateway
(``locustfile.py``), and ``python -m load.local``, the bounded run ``nox -s load`` makes
against a local stack."""
