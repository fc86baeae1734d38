#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run lint, types and tests.
# Installs system packages with apt-get when run as root (sshd, nginx, chromium, rsync, git,
# bubblewrap: builds run in its sandbox; node: generated JavaScript is run by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in sshd:openssh-server nginx:nginx-light chromium:chromium rsync:rsync git:git ssh-keygen:openssh-client bwrap:bubblewrap node:nodejs; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${need[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check sitedeploy tests benchmarks
.venv/bin/mypy sitedeploy
# Security lint; skips and per-line "# nosec" reasons are in pyproject.toml and the code.
.venv/bin/bandit -c pyproject.toml -q -r sitedeploy
# Two processes (pytest-xdist; one file stays on one process, in order): about half the time.
.venv/bin/python -m pytest -q -n "${SITEDEPLOY_TEST_PROCESSES:-2}" --dist loadfile "$@"
# The S3 suites again on versioned buckets: there a rollback's bodies are noncurrent versions,
# not copies, and every ordering and crash guarantee must hold the same. (Not when arguments
# chose which tests to run.)
if [ $# -eq 0 ]; then
  .venv/bin/python -m pytest -q -n "${SITEDEPLOY_TEST_PROCESSES:-2}" --dist loadfile --s3-versioning tests/test_s3_*.py tests/test_versions_s3.py tests/reliability -k s3
fi
