"""SIGKILL exactly between an S3 switch's commit and its deferred deletes, through the real CLI.

The random points of test_crash.py hit this window only by chance (once seen in CI): a switch
writes the state object naming the new release, then deletes the keys whose
``retain_releases`` ran out. Here the S3 server (moto, in this process) kills the CLI's process
group the moment a DeleteObjects of site keys arrives after the commit, before carrying it out.
Then, as the crash suite does, the converging ``rollback --to`` the same release must succeed,
``verify`` must find no drift, and the keys the dead run never deleted go with the next switch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.s3.models import S3Backend

from sitedeploy import commands
from sitedeploy.release import records
from tests.fixtures.git import ContentRepo
from tests.fixtures.s3 import S3Server, bucket_tree
from tests.reliability.scenario import EXE, Scenario, write_deploy_toml


class PowerCut:
    """Armed with a process group: kill it when it sends a DeleteObjects of site keys after
    the state object stopped naming ``before`` (the switch committed), and drop that request."""

    def __init__(self) -> None:
        self.pgid: int | None = None
        self.before: str | None = None
        self.cut: list[str] = []

    def delete_objects(self, original: Any) -> Any:
        def patched(backend: Any, bucket: str, objects: list[dict[str, Any]], *a: Any, **k: Any) -> Any:
            site = [o for o in objects if ".sitedeploy/" not in str(o["Key"])]
            if self.pgid is not None and site and _live(backend, bucket) != self.before:
                os.killpg(self.pgid, signal.SIGKILL)
                self.pgid = None
                self.cut = [str(o["Key"]) for o in site if not o.get("VersionId")]  # keys, not versions
                time.sleep(0.2)  # the client is gone: nothing it sent after this is served
                raise ConnectionAbortedError("the client died")
            return original(backend, bucket, objects, *a, **k)

        return patched


def _live(backend: Any, bucket: str) -> str | None:
    key = backend.get_object(bucket, ".sitedeploy/live.json")
    return json.loads(key.value).get("release") if key is not None else None


@pytest.fixture
def power_cut(monkeypatch: pytest.MonkeyPatch) -> Iterator[PowerCut]:
    cut = PowerCut()
    monkeypatch.setattr(S3Backend, "delete_objects", cut.delete_objects(S3Backend.delete_objects))
    yield cut


def killed_after_commit(sc: Scenario, cut: PowerCut, *args: str) -> list[str]:
    """Run ``sitedeploy ARGS``; the keys whose delete it never made (it was killed then)."""
    cut.before, cut.cut = sc.live()[0], []
    proc = subprocess.Popen(
        [EXE, "--config", str(sc.config_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    cut.pgid = proc.pid
    _, err = proc.communicate(timeout=300)
    cut.pgid = None
    assert proc.returncode == -signal.SIGKILL, err.decode()
    return cut.cut


@pytest.mark.slow
def test_s3_rollback_killed_between_commit_and_deletes_converges(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, power_cut: PowerCut
) -> None:
    repo = ContentRepo(tmp_path / "content")
    table = {"type": "s3", "bucket": s3_bucket, "endpoint_url": s3_server.url, "region": "us-east-1"}
    sc = Scenario("s3", repo, write_deploy_toml(tmp_path, repo.path, "s3", table), lambda: [])
    ids = []
    for _ in range(5):  # the logo, so its image variants' names, changes with every odd commit
        sc.next_commit()
        assert sc.cli("deploy").returncode == 0
        ids.append(sc.live()[0])
    assert sc.cli("rollback").returncode == 0  # 5 -> 4: logo 5's variants leave (stale)
    commands.resume(sc.config)
    back = ids[1]  # 4 -> 2: logo 5's variants are in neither: their time is up at this switch
    assert back is not None
    left = killed_after_commit(sc, power_cut, "rollback", "--to", back)
    assert left and sc.live()[0] == back  # committed; its deletes never made
    assert set(left) <= set(bucket_tree(s3_server.client(), s3_bucket))

    with sc.target() as t:  # leftovers the state owns, not drift
        manifest = records.read_manifest(t, back)
        assert manifest is not None and all(d.clean for d in t.verify(back, manifest))
    commands.rollback(sc.config, to=back)  # the crash suite's converging run: not refused
    assert sc.live()[0] == back
    commands.resume(sc.config)
    assert not set(left) & set(bucket_tree(s3_server.client(), s3_bucket))  # gone with that switch
