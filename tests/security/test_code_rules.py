"""Rules the code keeps, checked on the source itself: no shell, no auto-accepted host keys,
no unsafe YAML; and the sandbox's argv is a list that carries no secret."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sitedeploy
from sitedeploy import sandbox

SOURCE = Path(sitedeploy.__file__).parent
FORBIDDEN = {
    "shell=True": re.compile(r"shell\s*=\s*True"),
    "AutoAddPolicy": re.compile(r"AutoAddPolicy"),
    "WarningPolicy": re.compile(r"WarningPolicy"),
    "yaml.load without a SafeLoader": re.compile(r"yaml\.(?:load|load_all)\((?!.*SafeLoader)"),
    "yaml.unsafe_load / FullLoader": re.compile(r"unsafe_load|FullLoader|UnsafeLoader|yaml\.Loader\b"),
}


@pytest.mark.parametrize("rule", sorted(FORBIDDEN))
def test_the_source_never_uses(rule: str) -> None:
    hits = [
        f"{path.relative_to(SOURCE.parent)}:{number}: {line.strip()}"
        for path in sorted(SOURCE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if FORBIDDEN[rule].search(line)
    ]
    assert not hits, "\n".join(hits)


def test_the_rules_catch_what_they_name() -> None:
    assert FORBIDDEN["shell=True"].search("subprocess.run(cmd, shell=True)")
    assert FORBIDDEN["yaml.load without a SafeLoader"].search("yaml.load(text)")
    assert not FORBIDDEN["yaml.load without a SafeLoader"].search(
        "yaml.load(text, Loader=_LenientSafeLoader)"
    )


def test_the_bwrap_argv_is_a_list_without_network_or_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "canary-argv")
    env = sandbox.allowed_env(tmp_path / "home", tmp_path / "tmp", tmp_path / "bin", "bwrap")
    argv = sandbox.bwrap_argv(["mkdocs", "build"], env=env, read_only=[tmp_path], writable=[], cwd=tmp_path)
    assert all(isinstance(a, str) for a in argv) and argv[-3:] == ["--", "mkdocs", "build"]
    for flag in ("--unshare-pid", "--unshare-net", "--clearenv", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert "canary-argv" not in " ".join(argv) and "AWS_SECRET_ACCESS_KEY" not in argv
    networked = sandbox.bwrap_argv(["pip"], env=env, read_only=[], writable=[], cwd=tmp_path, network=True)
    assert "--unshare-net" not in networked and "/etc/resolv.conf" in networked
    assert "/etc/ssl/private" not in " ".join(argv) and str(Path.home()) + " " not in " ".join(argv) + " "
