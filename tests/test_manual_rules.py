"""A manual ``sitedeploy deploy`` obeys the rules the agent obeys, through the CLI on a real repo.

A pin left by ``rollback``, a suspension (release freeze), a commit marked bad and a failed
signature check each refuse with one line that says why and how to override; ``--force``
deploys anyway and history records that it was forced. ``status`` says why the newest commit
is not live.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.fixtures.git import ContentRepo
from tests.test_cli import assert_one_line_error, current_target, sd


def history(deploy_toml: Path) -> list[dict[str, str]]:
    return list(json.loads(sd(deploy_toml, "--json", "history").stdout))


def test_a_pin_left_by_rollback_refuses_a_manual_deploy_until_forced(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    assert sd(deploy_toml, "deploy").exit_code == 0
    content_repo.add_static_site(version="v2")
    bad = content_repo.commit("landing v2")
    assert sd(deploy_toml, "deploy").exit_code == 0
    rolled = sd(deploy_toml, "rollback")
    assert rolled.exit_code == 0
    assert f"marked {bad[:8]} bad" in rolled.stdout and f"sitedeploy unmark {bad[:8]}" in rolled.stdout
    live = current_target(deploy_toml)
    content_repo.add_static_site(version="v3")
    newest = content_repo.commit("landing v3")

    refused = sd(deploy_toml, "deploy")
    assert_one_line_error(refused, "target 'local'", "pinned by", "--force")
    assert current_target(deploy_toml) == live

    status = json.loads(sd(deploy_toml, "--json", "status").stdout)[0]
    assert bad in status["bad_commits"]
    text = sd(deploy_toml, "status").stdout
    assert f"BAD       {bad[:12]}" in text and "PINNED" in text

    forced = sd(deploy_toml, "deploy", "--force")
    assert forced.exit_code == 0, forced.output
    assert current_target(deploy_toml) != live
    entry = history(deploy_toml)[0]
    assert entry["commit"] == newest and entry["note"].startswith("forced: pinned by")


def test_a_suspended_target_refuses_deploys_and_resume_lifts_it(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    assert sd(deploy_toml, "deploy").exit_code == 0
    assert sd(deploy_toml, "suspend", "--reason", "release freeze").exit_code == 0
    content_repo.add_static_site(version="v2")
    content_repo.commit("landing v2")
    live = current_target(deploy_toml)
    refused = sd(deploy_toml, "deploy")
    assert_one_line_error(refused, "suspended by", "release freeze", "'sitedeploy resume'", "--force")
    assert_one_line_error(sd(deploy_toml, "deploy", "--dry-run"), "suspended by")  # the same refusal
    assert current_target(deploy_toml) == live
    assert sd(deploy_toml, "resume").exit_code == 0
    assert sd(deploy_toml, "deploy").exit_code == 0
    assert current_target(deploy_toml) != live


def test_a_commit_marked_bad_by_hand_is_refused_until_unmarked(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    assert sd(deploy_toml, "deploy").exit_code == 0
    content_repo.add_static_site(version="v2")
    sha = content_repo.commit("landing v2")
    assert sd(deploy_toml, "mark-bad", "main", "--reason", "typo on the front page").exit_code == 0
    assert_one_line_error(sd(deploy_toml, "deploy"), f"commit {sha[:8]} is marked bad", "sitedeploy unmark")
    assert sd(deploy_toml, "unmark", sha[:8]).exit_code == 0
    assert sd(deploy_toml, "deploy").exit_code == 0
    assert history(deploy_toml)[0]["commit"] == sha


def test_unmark_takes_the_branch_or_tag_that_mark_bad_took(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    assert sd(deploy_toml, "deploy").exit_code == 0
    content_repo.add_static_site(version="v2")
    sha = content_repo.commit("landing v2")
    assert sd(deploy_toml, "mark-bad", "main").exit_code == 0
    assert sd(deploy_toml, "unmark", "main").exit_code == 0  # the commit main names now
    assert sd(deploy_toml, "deploy").exit_code == 0
    assert history(deploy_toml)[0]["commit"] == sha


def test_an_unsigned_commit_is_refused_when_signatures_are_required(
    tmp_path: Path, deploy_toml: Path, content_repo: ContentRepo
) -> None:
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"ada@example.com {key.with_suffix('.pub').read_text()}")
    text = deploy_toml.read_text().replace(
        "[source]\n", f'[source]\nverify_signatures = "ssh"\nallowed_signers = "{allowed}"\n'
    )
    deploy_toml.write_text(text)
    assert_one_line_error(sd(deploy_toml, "deploy"), "is not signed", "--force")
    assert not (deploy_toml.parent / "public" / "current").exists()
    forced = sd(deploy_toml, "deploy", "--force")
    assert forced.exit_code == 0, forced.output
    assert "is not signed" in history(deploy_toml)[0]["note"]


def test_the_lock_timeout_flag_is_accepted_by_every_command_that_locks(deploy_toml: Path) -> None:
    for args in (["deploy"], ["rollback", "--to", "nothing"], ["suspend"], ["resume"], ["verify"]):
        result = sd(deploy_toml, *args, "--lock-timeout", "0.5")
        assert "No such option" not in result.output, (args, result.output)
    bad = sd(deploy_toml, "deploy", "--lock-timeout", "-1")
    assert bad.exit_code == 2 and "'--lock-timeout': -1.0 is not in the range" in bad.stderr


def test_a_damaged_control_file_is_one_clear_line_not_a_traceback(deploy_toml: Path) -> None:
    assert sd(deploy_toml, "deploy").exit_code == 0
    control = deploy_toml.parent / "public" / ".sitedeploy" / "control.json"
    for damage in ('{"pin": 5}', "{not json", '{"bad_commits": {"abc": {"by": 1, "when": 2}}}'):
        control.write_text(damage)
        for args in (["status"], ["deploy"], ["suspend"]):
            assert_one_line_error(sd(deploy_toml, *args), ".sitedeploy/control.json", "is damaged")
    control.unlink()
    assert sd(deploy_toml, "status").exit_code == 0


def test_build_warnings_are_shown_and_the_link_gate_guards_manual_deploys(
    deploy_toml: Path, content_repo: ContentRepo
) -> None:
    assert sd(deploy_toml, "deploy").exit_code == 0
    live = current_target(deploy_toml)
    content_repo.write("sites/docs/docs/index.md", "# Home\n\nSee the [missing page](nowhere.md).\n")
    content_repo.commit("a broken link")

    refused = sd(deploy_toml, "deploy")
    assert_one_line_error(refused, "nowhere.md", "--no-link-check")
    assert current_target(deploy_toml) == live

    shown = sd(deploy_toml, "deploy", "--no-link-check")
    assert shown.exit_code == 0, shown.output
    assert "build warning(s)" in shown.stdout and "nowhere.md" in shown.stdout
    deployed = json.loads(sd(deploy_toml, "--json", "deploy", "--ref", "HEAD~1").stdout)[0]
    assert deployed["warning_count"] == 0 and deployed["outcome"] == "deployed"
