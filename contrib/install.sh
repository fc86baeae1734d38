#!/bin/sh
# Install sitedeploy on a server, the way contrib/*.service and contrib/sitedeploy.cron expect it:
#
#   <prefix>/bin/sitedeploy      a virtualenv under --prefix (default /opt/sitedeploy)
#   user sitedeploy              a system user without a login shell (--user)
#   /var/lib/sitedeploy          its state folder: mirror, build cache, agent memory (0750, owned by it;
#                                the units use systemd's StateDirectory=, which is this folder)
#   /etc/sitedeploy              deploy.toml and agent.env (secrets, 0600, root) go here
#   bubblewrap, git              from the distribution (apt-get) when run as root and missing
#   the systemd units            installed and enabled when systemd runs (else: what to do)
#
# Run it again to upgrade: every step checks before it acts. Usage:
#
#   sudo sh contrib/install.sh [--prefix DIR] [--user NAME] [--state-dir DIR] [--config-dir DIR]
#                              [--source PIP-SPEC] [--python PYTHON] [--no-systemd] [--no-user]
#
# Each flag has an environment variable: SITEDEPLOY_PREFIX, SITEDEPLOY_USER, SITEDEPLOY_STATE_DIR,
# SITEDEPLOY_CONFIG_DIR, SITEDEPLOY_SOURCE, PYTHON. --source is what pip installs: by default
# this checkout; "sitedeploy==0.1.0" or a wheel's path work too. No value given here is ever
# pasted into a shell string: paths and names are checked, then passed as arguments.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
prefix=${SITEDEPLOY_PREFIX:-/opt/sitedeploy}
user=${SITEDEPLOY_USER:-sitedeploy}
state_dir=${SITEDEPLOY_STATE_DIR:-/var/lib/sitedeploy}
config_dir=${SITEDEPLOY_CONFIG_DIR:-/etc/sitedeploy}
source=${SITEDEPLOY_SOURCE:-$(dirname "$here")}
python=${PYTHON:-python3}
systemd=auto
make_user=yes

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 2; }

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
        --user) user=${2:?--user needs a name}; shift 2 ;;
        --state-dir) state_dir=${2:?--state-dir needs a folder}; shift 2 ;;
        --config-dir) config_dir=${2:?--config-dir needs a folder}; shift 2 ;;
        --source) source=${2:?--source needs a pip requirement or path}; shift 2 ;;
        --python) python=${2:?--python needs an interpreter}; shift 2 ;;
        --no-systemd) systemd=no; shift ;;
        --no-user) make_user=no; shift ;;
        -h|--help) usage 0 ;;
        *) printf 'install.sh: unknown option %s\n' "$1" >&2; usage 2 ;;
    esac
done

# An absolute path of plain characters: it ends up in unit files (ExecStart=) and sed below.
check_path() {
    case $2 in
        /*) ;;
        *) die "$1 must be an absolute path, got '$2'" ;;
    esac
    if printf '%s' "$2" | LC_ALL=C grep -q '[^A-Za-z0-9._/-]'; then
        die "$1 may only hold letters, digits, '.', '_', '-' and '/', got '$2'"
    fi
}
check_path --prefix "$prefix"
check_path --state-dir "$state_dir"
check_path --config-dir "$config_dir"
if ! printf '%s' "$user" | LC_ALL=C grep -Eq '^[a-z_][a-z0-9_-]{0,31}$'; then
    die "--user must be a system user name (a-z, 0-9, '_', '-'), got '$user'"
fi

is_root() { [ "$(id -u)" -eq 0 ]; }

distribution_packages() {
    missing=""
    command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
    command -v git >/dev/null 2>&1 || missing="$missing git"
    "$python" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$missing python3-venv"
    [ -n "$missing" ] || return 0
    if is_root && command -v apt-get >/dev/null 2>&1; then
        say "installing from the distribution:$missing"
        apt-get update -q
        # shellcheck disable=SC2086 # a list of fixed package names, split on purpose
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
    else
        say "warning: missing$missing; install them with your package manager (the build sandbox needs bwrap)"
    fi
}

virtualenv() {
    if [ ! -x "$prefix/bin/python" ]; then
        say "creating the virtualenv $prefix"
        "$python" -m venv "$prefix"
    fi
    say "installing $source into $prefix"
    "$prefix/bin/python" -m pip install --quiet --upgrade "$source"
}

system_user() {
    owner=$(id -un)
    [ "$make_user" = yes ] && is_root || return 0
    if ! id -u "$user" >/dev/null 2>&1; then
        say "creating the system user $user"
        nologin=$(command -v nologin || echo /usr/sbin/nologin)
        useradd --system --user-group --home-dir "$state_dir" --no-create-home --shell "$nologin" "$user"
    fi
    owner=$user
}

folders() {
    install -d -m 0755 "$config_dir"
    if is_root; then
        install -d -m 0750 -o "$owner" -g "$(id -gn "$owner")" "$state_dir"
    else
        install -d -m 0750 "$state_dir"
    fi
    if [ ! -e "$config_dir/agent.env" ]; then
        (umask 077 && : >"$config_dir/agent.env")  # secrets: KEY=value lines, root only
    fi
}

units() {
    if [ "$systemd" = no ] || [ ! -d /run/systemd/system ] || ! is_root; then
        say "systemd units not installed; to run the agent:"
        say "  systemd: copy $here/sitedeploy-agent.service to /etc/systemd/system/ (set ExecStart to"
        say "           $prefix/bin/sitedeploy, ReadWritePaths to your local targets), then"
        say "           systemctl daemon-reload && systemctl enable --now sitedeploy-agent"
        say "  cron:    copy $here/sitedeploy.cron to /etc/cron.d/sitedeploy (same path changes)"
        return 0
    fi
    for unit in sitedeploy-agent.service sitedeploy-agent-once.service sitedeploy-agent-once.timer; do
        sed -e "s|/opt/sitedeploy/bin/sitedeploy|$prefix/bin/sitedeploy|" \
            -e "s|/etc/sitedeploy|$config_dir|g" -e "s|^User=sitedeploy|User=$user|" \
            -e "s|^Group=sitedeploy|Group=$user|" "$here/$unit" >"/etc/systemd/system/$unit.tmp"
        mv "/etc/systemd/system/$unit.tmp" "/etc/systemd/system/$unit"
    done
    systemctl daemon-reload
    systemctl enable sitedeploy-agent.service
    say "enabled sitedeploy-agent; write $config_dir/deploy.toml, then: systemctl start sitedeploy-agent"
}

distribution_packages
virtualenv
system_user
folders
units
say "installed: $("$prefix/bin/sitedeploy" --version)"
