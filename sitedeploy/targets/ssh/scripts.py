"""The shell scripts the SSH target runs on each host, where a step must be one atomic action
there (read the lock's token and act on it without a round trip between the two).

Each is run by :meth:`.host.SSHHost.sh` as ``sh -c SCRIPT sitedeploy ARGS...``: inputs arrive as
positional arguments, never inside the script text.
"""

RENEW_LOCK = r"""
meta=$1; mine=$2
tok=$(sed -n 's/^ *"token": *"\([0-9a-f]*\)".*/\1/p' "$meta/lock.json.d/lock.json" 2>/dev/null)
if [ -z "$tok" ] || [ "$tok" != "$mine" ]; then cat > /dev/null; echo lost; exit 0; fi
tmp="$meta/.lock.json.$$.tmp"
cat > "$tmp" && mv -f -- "$tmp" "$meta/lock.json" && echo renewed
"""
FENCED_SWITCH = r"""
meta=$1; link=$2; cur=$3; shift 3
tok=$(sed -n 's/^ *"token": *"\([0-9a-f]*\)".*/\1/p' "$meta/lock.json.d/lock.json" 2>/dev/null)
for mine in "$@"; do
  if [ -n "$tok" ] && [ "$tok" = "$mine" ]; then mv -T -f -- "$link" "$cur" && echo switched; exit; fi
done
rm -f -- "$link"
owner=$(sed -n 's/^ *"owner": *"\([^"]*\)".*/\1/p' "$meta/lock.json.d/lock.json" 2>/dev/null)
echo "the lock is held by ${owner:-nobody}"
"""
CLEAR_BUT_STATE = r"""
[ ! -d "$1" ] || find "$1" -mindepth 1 -maxdepth 1 ! -name .sitedeploy -exec rm -rf -- {} +
"""
