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


# --- every write to a target goes through the transaction ---------------------------------------

TARGET_WRITE = re.compile(
    # cacheseal.discard empties a build cache folder of the deployer's, not a target
    r"(?<!\btx)(?<!super\(\))(?<!\bcacheseal)\.(switch_to|remove_release|retire|prepare|repair|discard|"
    r"write_meta|create_meta|delete_meta)\(|(?<!self)\._each\("  # SSH's private fan-out
)
S3_WRITE = re.compile(
    r"\b(delete_objects|delete_object|put_object|copy_object|upload_file|upload_fileobj|"
    r"put_object_acl|restore_object|complete_multipart_upload)\("
)
WRITERS = {
    "release/transaction.py": "the transaction itself",
    "release/retire.py": "the transaction's retire mode",
    "release/lock.py": "the lock (lock.json only)",
    "release/records.py": "the state files' helpers, called under the transaction's lock",
    "release/control.py": "update_control: the one other, locked write path (control.json)",
    "versions/state.py": "the family state's helpers, called under the root's transaction",
}
"""Modules outside ``targets/`` allowed to call a target's write methods, and why."""


def target_writes(text: str, rel: str) -> list[str]:
    if rel.startswith("targets/") or rel in WRITERS:
        return []
    hits = [line.strip() for line in text.splitlines() if TARGET_WRITE.search(line)]
    return [h for h in hits if not h.startswith(("argv, env = sandbox.prepare",))]


def s3_writes(text: str, rel: str) -> list[str]:
    if rel.startswith("targets/s3/"):
        return []
    return [line.strip() for line in text.splitlines() if S3_WRITE.search(line)]


def test_every_write_to_a_target_is_reached_only_through_the_transaction() -> None:
    """A target's write methods are called in targets/ (implementations and their subclasses
    call ``super()``), by the transaction (``tx.``) and by the few helpers in WRITERS that run
    under its lock; S3 write calls appear only under targets/s3/."""
    hits = []
    for path in sorted(SOURCE.rglob("*.py")):
        rel = str(path.relative_to(SOURCE))
        text = path.read_text()
        hits += [f"{rel}: {h}" for h in target_writes(text, rel) + s3_writes(text, rel)]
    assert not hits, "\n".join(hits)


def test_the_transaction_rule_catches_what_it_names() -> None:
    removed_line = "            t.s3.delete_objects(Bucket=t.cfg.bucket, Delete={'Objects': batch})"
    assert s3_writes(removed_line, "versions/s3.py")
    assert not s3_writes(removed_line, "targets/s3/transfer.py")
    assert target_writes("    line.remove_release(rid)", "versions/layout.py")
    assert target_writes("    store.delete_meta('lock.json')", "commands/deploy.py")
    assert not target_writes("        tx.repair(live, manifest, built.root, drift)", "commands/inspect.py")
    assert not target_writes("    prepared = super().prepare(record, manifest)", "versions/ssh.py")
    assert target_writes('    t._each(lambda h: h.sh("remove the line", _CLEAR, t.root))', "versions/ssh.py")


# --- a house a newcomer can find their way in ------------------------------------------------

MAX_MODULE_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    """Long modules are split along their seams (one room, one job each)."""
    long = [
        f"{path.relative_to(SOURCE.parent)}: {n} lines"
        for path in sorted(SOURCE.rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, "\n".join(long)


def test_the_sandbox_side_imports_nothing_else_of_sitedeploy() -> None:
    """builders/mkdocs_incremental/ runs inside the sandbox, where sitedeploy is not installed:
    it is copied as a folder, so it may import only itself (relatively), stdlib and MkDocs."""
    inside = SOURCE / "builders" / "mkdocs_incremental"
    bad = [
        f"{path.name}: {line.strip()}"
        for path in sorted(inside.glob("*.py"))
        for line in path.read_text().splitlines()
        if re.match(r"\s*(from\s+(sitedeploy|\.\.)|import\s+sitedeploy)", line)
    ]
    assert not bad, "\n".join(bad)
