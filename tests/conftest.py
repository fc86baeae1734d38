"""Shared test setup. Fixtures for each real component live in ``tests/fixtures/<name>.py``
(git repos, sshd, nginx, the S3 server, a browser) and are loaded here as plugins."""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)
