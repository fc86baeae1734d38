#!/usr/bin/env bash
# The quick start: deploy this repository's own sites (the landing page and the manual, in sites/)
# to the local target in deploy.toml, then say where to browse them.
# Builds run in a bubblewrap sandbox; as root on Debian/Ubuntu this installs it with apt-get
# when it is missing (otherwise install the 'bubblewrap' package yourself).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "bubblewrap (bwrap) is missing: install the 'bubblewrap' package, or run this as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
.venv/bin/sitedeploy deploy --target local

cat <<'EOF'

Browse the manual you just deployed:
  .venv/bin/sitedeploy serve --target local
then open http://127.0.0.1:8000/docs/ (the manual) and http://127.0.0.1:8000/ (the landing page).
EOF
