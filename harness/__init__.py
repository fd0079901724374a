"""The harness: scenarios, stacks, clocks, expectations, reports and the ``squall`` CLI.

It drives ``system`` and ``mocks`` only through their public faces: ASGI apps and servers,
settings, the control plane's client, and the system's own APIs.
"""
