"""``sitedeploy.sandbox.untrusted`` and the sandbox's binds, directly (issue 21, class fix 1): what a
step can leave in a folder is refused with one line, moved or copied as the rules say, and
never followed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sitedeploy import sandbox
from sitedeploy.errors import BuildError
from sitedeploy.release import manifest
from sitedeploy.sandbox import untrusted
from tests.fixtures.canaries import CanaryFolder

WHERE = "site 'docs' (sites/docs)"


def _output(tmp_path: Path) -> Path:
    out = tmp_path / "work" / "site"
    (out / "guide").mkdir(parents=True)
    (out / "index.html").write_text("<p>home</p>")
    (out / "guide" / "index.html").write_text("<p>guide</p>")
    return out


@pytest.mark.parametrize("kind", ["link-file", "link-dir", "fifo", "socket", "huge", "deep", "root-link"])
def test_each_planted_thing_is_refused_in_one_line(
    kind: str, tmp_path: Path, canary_folder: CanaryFolder
) -> None:
    out = _output(tmp_path)
    if kind == "link-file":
        (out / "guide" / "leak.html").symlink_to(canary_folder.file)
    elif kind == "link-dir":
        (out / "leak").symlink_to(canary_folder.folder)
    elif kind == "fifo":
        os.mkfifo(out / "pipe.html")
    elif kind == "socket":
        import socket

        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(out / "sock"))
    elif kind == "huge":
        with (out / "huge.bin").open("wb") as f:
            f.truncate(untrusted.MAX_FILE_BYTES + 1)  # sparse: no disk used
    elif kind == "deep":
        deep = out
        for _ in range(untrusted.MAX_DEPTH + 2):
            deep = deep / "d"
        deep.mkdir(parents=True)
    else:
        os.rename(out, tmp_path / "work" / "real")
        out.symlink_to(canary_folder.folder)
    with pytest.raises(untrusted.UnsafeOutput) as caught:
        untrusted.copy_out(tmp_path / "work", ["site"], tmp_path / "mine", WHERE)
    message = str(caught.value)
    assert message.startswith(WHERE) and "\n" not in message
    with pytest.raises(untrusted.UnsafeOutput):
        manifest.scan(out)  # the manifest walks by the same rules, a top-level link included


def test_copy_out_moves_single_files_and_copies_shared_inodes(tmp_path: Path) -> None:
    out = _output(tmp_path)
    other = tmp_path / "work" / "cache-page.html"
    other.write_text("<p>shared</p>")
    os.link(other, out / "shared.html")
    single = (out / "index.html").stat().st_ino
    untrusted.copy_out(tmp_path / "work", ["site"], tmp_path / "mine", WHERE)
    mine = tmp_path / "mine"
    assert (mine / "index.html").stat().st_ino == single  # renamed: no bytes copied
    assert (mine / "shared.html").stat().st_ino != other.stat().st_ino  # a new inode
    other.write_text("<p>changed by the next build</p>")
    assert (mine / "shared.html").read_text() == "<p>shared</p>"
    assert sorted(rel for rel, _ in manifest.walk(mine)) == ["guide/index.html", "index.html", "shared.html"]


def test_a_link_above_the_output_is_refused(tmp_path: Path, canary_folder: CanaryFolder) -> None:
    """Zensical's ``site_dir`` may be ``a/b``: a link at ``a`` is not followed either."""
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "a").symlink_to(canary_folder.root)
    with pytest.raises(untrusted.UnsafeOutput, match="a symlink at 'a'"):
        untrusted.copy_out(tmp_path / "project", ["a", "dir"], tmp_path / "mine", WHERE)


def test_read_tail_is_bounded_and_never_follows(tmp_path: Path, canary_folder: CanaryFolder) -> None:
    log = tmp_path / "run.log"
    with log.open("wb") as f:
        f.truncate(10 * 1024**3)  # a sparse 10 GiB log
        f.seek(-5, os.SEEK_END)
        f.write(b"last\n")
    assert untrusted.read_tail(log, 1024).endswith(b"last\n") and len(untrusted.read_tail(log, 1024)) == 1024
    link = tmp_path / "link.log"
    link.symlink_to(canary_folder.file)
    with pytest.raises(OSError):
        untrusted.read_tail(link, 1024)


def test_a_bind_that_is_a_symlink_is_refused(tmp_path: Path, canary_folder: CanaryFolder) -> None:
    """Finding 3: a folder a previous step turned into a link is never bound (bwrap would bind
    what it names, writable)."""
    (tmp_path / "step").symlink_to(canary_folder.folder)
    linked_work = sandbox.Step(["true"], tmp_path / "step", cwd=tmp_path)
    with pytest.raises(BuildError, match="not a real folder"):
        sandbox.prepare(linked_work, "bwrap", Path(sys.executable))
    linked_bind = sandbox.Step(["true"], tmp_path / "w", cwd=tmp_path, writable=[tmp_path / "step"])
    with pytest.raises(BuildError, match="is a symlink; refusing to bind"):
        sandbox.prepare(linked_bind, "bwrap", Path(sys.executable))


def test_a_step_log_is_outside_its_work_folder(tmp_path: Path) -> None:
    """Findings 4 and 8: the log is beside the work folder, which is all the step can write."""
    step = sandbox.Step(["sh", "-c", "echo hello; ls -a $HOME/.."], tmp_path / "step" / "work", cwd=tmp_path)
    code, log = sandbox.run(step, "bwrap", Path(sys.executable), 60)
    assert code == 0 and log.parent == tmp_path / "step" and "output.log" not in log.read_text()
    assert log.read_text().startswith("hello")
