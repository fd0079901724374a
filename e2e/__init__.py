"""The E2E tier: Playwright drives the dashboard in the Debian Chromium (`nox -s e2e`)."""
