"""Two targets in one place — one bucket, one folder, one host — never delete each other's files.

The data-loss case of issue 28: a site at the bucket's root and a second one at
``prefix = "versions/"``; ``verify --repair`` of the first listed the second's keys as extra and
deleted every one of them. Here each target type gets the same pair of sites, configured in two
deploy.toml files (one file holding both is refused at load, also proven here), and the outer
one is tampered with and repaired: the inner site survives byte for byte, and a repair that
would delete more than ``max_delete`` files is refused unless forced.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sitedeploy import commands
from sitedeploy import config as config_mod
from sitedeploy.agent.loop import Agent
from sitedeploy.errors import ConfigError, PlanRefused
from tests.fixtures.agent import AgentEnv, NotifySink
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import S3Server, bucket_tree
from tests.fixtures.sshd import SSHEnv
from tests.reliability import report

Table = dict[str, object]


def site_repo(folder: Path, title: str, pages: int) -> ContentRepo:
    repo = ContentRepo(folder)
    for i in range(pages):
        repo.write(f"site/p{i}/index.html", f"<!doctype html><title>{title}</title><p>{title} {i}</p>\n")
    repo.write("site/index.html", f"<!doctype html><title>{title}</title><h1>{title}</h1>\n")
    repo.commit(title)
    return repo


def operator_file(folder: Path, repo: ContentRepo, targets: dict[str, Table]) -> Path:
    folder.mkdir(exist_ok=True)
    text = f'[source]\nrepo = "{repo.path}"\n\n[[sites]]\nname = "site"\npath = "site"\n\n'
    for name, table in targets.items():
        text += f"[targets.{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
    path = folder / "deploy.toml"
    path.write_text(text)
    return path


def check_pair(
    tmp_path: Path, outer: Table, inner: Table, read_inner: Callable[[], dict[str, bytes]], kind: str
) -> None:
    """Deploy both sites, tamper with the outer one, repair it: the inner one is untouched."""
    main = operator_file(tmp_path / "ops-main", site_repo(tmp_path / "main", "main", 3), {"web": outer})
    other = operator_file(tmp_path / "ops-other", site_repo(tmp_path / "other", "other", 12), {"web": inner})
    commands.deploy(config_mod.load(main))
    commands.deploy(config_mod.load(other))
    kept = read_inner()
    assert len(kept) >= 13

    [found] = commands.verify(config_mod.load(main))
    assert found.clean, f"the other target's files were taken for drift: {found.drift}"
    commands.verify(config_mod.load(main), repair=True)
    assert read_inner() == kept
    both = operator_file(
        tmp_path / "ops-both", site_repo(tmp_path / "both", "b", 1), {"web": outer, "versions": inner}
    )
    with pytest.raises(ConfigError, match=r"targets\.web .* and targets\.versions .* nested places"):
        config_mod.load(both)
    report.row("shared places", f"{kind}: repair of one target never touches a nested target's files")


def test_two_targets_in_one_bucket(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    base = {"type": "s3", "bucket": s3_bucket, "endpoint_url": s3_server.url, "region": "us-east-1"}
    client = s3_server.client()
    check_pair(
        tmp_path,
        {**base, "prefix": ""},
        {**base, "prefix": "versions/"},
        lambda: bucket_tree(client, s3_bucket, "versions/"),
        "s3",
    )


def test_two_targets_in_one_folder(tmp_path: Path) -> None:
    outer = tmp_path / "public"
    check_pair(
        tmp_path,
        {"type": "local", "path": str(outer)},
        {"type": "local", "path": str(outer / "current" / "versions")},  # served at /versions/
        lambda: tree_of(outer / "current" / "versions"),
        "local",
    )


def test_two_targets_on_one_host(tmp_path: Path, ssh_env: SSHEnv) -> None:
    server = ssh_env.server()
    check_pair(
        tmp_path,
        ssh_env.target_table(Path("www")),
        ssh_env.target_table(Path("www/current/versions")),
        lambda: tree_of(server.home / "www" / "current" / "versions"),
        "ssh",
    )


def tree_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and ".sitedeploy" not in p.parts
    } | {str(p.relative_to(root)): b"" for p in root.rglob("*") if p.is_symlink()}


def test_repair_past_max_delete_is_refused_unless_forced(tmp_path: Path) -> None:
    outer = tmp_path / "public"
    main = operator_file(
        tmp_path / "ops",
        site_repo(tmp_path / "main", "main", 2),
        {"web": {"type": "local", "path": str(outer), "max_delete": 2}},
    )
    cfg = config_mod.load(main)
    commands.deploy(cfg)
    for i in range(3):
        (outer / "current" / f"stray{i}.html").write_text("x")
    with pytest.raises(PlanRefused, match=r"repair would delete 3 extra files \(max_delete = 2\)"):
        commands.verify(cfg, repair=True)
    commands.suspend(cfg, reason="freeze")
    with pytest.raises(PlanRefused, match=r"suspended by .*freeze.*'sitedeploy resume' or --force"):
        commands.verify(cfg, repair=True, force_delete=True)
    commands.resume(cfg)
    [dry] = commands.verify(cfg, repair=True, force_delete=True, dry_run=True)
    assert not dry.repaired and (outer / "current" / "stray0.html").exists()
    [done] = commands.verify(cfg, repair=True, force_delete=True)
    assert done.repaired and not (outer / "current" / "stray0.html").exists()
    report.row("shared places", "repair obeys max_delete (--force-delete) and --dry-run like a deploy")


def test_the_agent_never_repairs_past_max_delete_and_says_so(
    agent_env: AgentEnv, notify_sink: NotifySink
) -> None:
    env = agent_env
    notify = f'drift_every = 1\n[[agent.notify]]\nurl = "{notify_sink.url}/"\n'
    agent = Agent(env.config(target='drift = "repair"\nmax_delete = 1\n', agent=notify), env.log())
    agent.tick()
    for name in ("a.html", "b.html"):
        (env.public / "current" / name).write_text("put there by someone")
    agent.tick()
    assert (env.public / "current" / "a.html").exists()
    assert notify_sink.received[-1]["event"] == "drift"
    assert "repair would delete 2 extra files (max_delete = 1)" in notify_sink.received[-1]["message"]
    report.row("shared places", "agent drift=repair past max_delete: notified, nothing deleted")
