"""``contrib/install.sh`` installs a working sitedeploy under a prefix, twice without harm,
and refuses a path that could not be written into a unit file safely."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

INSTALL = Path(__file__).parent.parent / "contrib" / "install.sh"


def install(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    folders = ["--state-dir", str(tmp_path / "state"), "--config-dir", str(tmp_path / "etc")]
    return subprocess.run(
        ["sh", str(INSTALL), *folders, "--no-systemd", "--no-user", *args],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def test_install_sh_makes_a_working_sitedeploy_under_a_scratch_prefix(tmp_path: Path) -> None:
    prefix = tmp_path / "opt" / "sitedeploy"
    for _ in range(2):  # the second run upgrades in place
        done = install(tmp_path, "--prefix", str(prefix))
        assert done.returncode == 0, done.stderr
    assert "installed: sitedeploy, version" in done.stdout
    assert "systemctl daemon-reload && systemctl enable --now sitedeploy-agent" in done.stdout
    version = subprocess.run([prefix / "bin" / "sitedeploy", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("sitedeploy, version")
    helped = subprocess.run(
        [prefix / "bin" / "sitedeploy", "agent", "--help"], capture_output=True, text=True
    )
    assert "--once" in helped.stdout
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "etc" / "agent.env").stat().st_mode) == 0o600


def test_install_sh_refuses_paths_and_names_it_cannot_use_safely(tmp_path: Path) -> None:
    bad = install(tmp_path, "--prefix", str(tmp_path / "a b;touch x"))
    assert bad.returncode == 2 and "--prefix may only hold letters" in bad.stderr
    bad = install(tmp_path, "--prefix", str(tmp_path / "p"), "--user", "Root;id")
    assert bad.returncode == 2 and "--user must be a system user name" in bad.stderr
    assert not (tmp_path / "p").exists() and not (tmp_path / "state").exists()
