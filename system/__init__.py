"""Squall's system under test: a production trading service, configured only by settings.

Nothing here imports ``mocks`` or ``harness``; to talk to a simulated broker the system is
pointed at it through its settings (base URLs, credentials), never patched.
"""
