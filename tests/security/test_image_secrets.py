"""Images are decoded in the sandbox: code running in the image worker (what a hostile image
gets from a decoder bug) cannot read the deployer's secrets: its environment, any process's
/proc/<pid>/environ, ~/.aws, ~/.ssh, the ssh-agent socket, or the state folder beyond the
image cache and the worker's own input; and the deployer's own process never decodes.

The exploit is stood in for by a probe put in front of the real worker entry point
(``confined.WORKER_COMMAND``, set in a fresh CLI process whose environment holds the canaries):
the probe runs with exactly the worker's argv, binds and environment, records what it can read
into the image cache (the one place it can write), then runs the real worker, so the build
goes on and its pictures prove the probe sat in the real stage. With ``[build] sandbox =
"off"`` the same probe finds the canaries, so the test can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.fixtures.git import ContentRepo, write_config

from .helpers import CANARIES, SNOOP, agent_socket, all_canaries, canary_home, release_file

PROBE = (
    SNOOP
    + """
import json, os, sys, uuid
found = snoop(DEPLOYER_HOME, AGENT_SOCKET, STATE_DIR)
found["argv"] = sys.argv
with open(os.path.join(STATE_DIR, "image-cache", "probe-%s.json" % uuid.uuid4().hex), "w") as f:
    json.dump(found, f)
from sitedeploy.images.worker import main
sys.exit(main())
"""
)
# The CLI, with the probe in front of the worker: argv[1] is the probe's code.
LAUNCH = """
import sys
from sitedeploy.images import confined
confined.WORKER_COMMAND = ("-P", "-c", sys.argv.pop(1))
from sitedeploy.cli import main
main()
"""
SITES = (
    '[[sites]]\nname = "other"\npath = "sites/other"\nmount = "/other/"\n\n'
    '[[sites]]\nname = "docs"\npath = "sites/docs"\nmount = "/docs/"\n\n'
    '[[sites]]\nname = "landing"\npath = "sites/landing"\nmount = "/landing/"\n'
)


def _with_images(repo: ContentRepo) -> None:
    """A photo on the MkDocs site (rendered by the prefetch worker while MkDocs builds) and
    one on the static site (rendered by the images stage's worker), and a site without any."""
    for width, folder in ((1200, "sites/docs/docs/img"), (1100, "sites/landing/img")):  # two cache keys
        (repo.path / folder).mkdir(parents=True)
        Image.linear_gradient("L").resize((width, 600)).convert("RGB").save(repo.path / folder / "photo.jpg")
    repo.write("sites/docs/docs/index.md", "# Home\n\n![a photo](img/photo.jpg)\n")
    repo.write(
        "sites/landing/index.html", '<!doctype html><title>x</title><img src="img/photo.jpg" alt="x">\n'
    )
    repo.add_static_site("other")
    repo.commit("images on two sites")


def _build(tmp_path: Path, repo: ContentRepo, sandbox: str) -> tuple[list[dict[str, object]], Path, str]:
    home = canary_home(tmp_path)
    ops = tmp_path / "ops"
    ops.mkdir()
    extra = f'\n[build]\nsandbox = "{sandbox}"\n'
    config = write_config(ops, repo.path, sites=SITES, images=True, extra=extra)
    state = ops / ".sitedeploy"
    constants = f"DEPLOYER_HOME = {str(home)!r}\nAGENT_SOCKET = {str(tmp_path / 'agent.sock')!r}\n"
    probe = constants + f"STATE_DIR = {str(state)!r}\n" + PROBE
    _with_images(repo)
    with agent_socket(tmp_path) as sock:
        env = {**os.environ, **CANARIES, "HOME": str(home), "SSH_AUTH_SOCK": str(sock)}
        proc = subprocess.run(
            [sys.executable, "-c", LAUNCH, probe, "--config", str(config), "build"],
            env=env, cwd=ops, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    dumps = [json.loads(p.read_text()) for p in sorted((state / "image-cache").glob("probe-*.json"))]
    return dumps, state, proc.stdout + proc.stderr


def _pictures(state: Path) -> None:
    """The build went on through the probe: both sites got their variants."""
    for page in ("docs/index.html", "landing/index.html"):
        assert "<picture>" in release_file(state, page).read_text(), page


def test_an_image_worker_reads_no_secret_inside_the_sandbox(
    tmp_path: Path, content_repo: ContentRepo
) -> None:
    dumps, state, output = _build(tmp_path, content_repo, "bwrap")
    _pictures(state)
    assert len(dumps) == 2, "one worker prefetching for docs, one in the images stage for landing"
    text = json.dumps(dumps)
    assert not [c for c in all_canaries() if c in text]
    for dump in dumps:
        environ = dump["environ"]
        assert isinstance(environ, dict)
        assert not [k for k in environ if k.startswith(("AWS_", "SSH_", "SITEDEPLOY", "SLACK"))]
        proc = dump["proc"]
        assert isinstance(proc, dict) and len(proc) <= 4, proc  # its own pid namespace
        assert dump["agent"] != "connected"
        assert all(str(v).startswith("ERR") for v in dict(dump["home_files"]).values())  # type: ignore[call-overload]
        # Only the folders leading to its own input (a checkout, or a build output) and the cache.
        assert set(dump["state"]) <= {"workspaces", "builds", "image-cache"}, dump["state"]  # type: ignore[call-overload]
        assert str(dump["mirror_config"]).startswith("ERR")
        assert str(dump["other_site"]).startswith("ERR")
        assert "other" not in dump["builds"] and "docs" not in dump["builds"], dump["builds"]  # type: ignore[operator]
        assert not {".ssh", ".aws", ".gnupg", ".config"} & set(dump["root_home"])  # type: ignore[call-overload]
    assert not (state / "planted").exists()  # a write there lands in a private tmpfs
    assert "sandbox" not in output


def test_an_image_worker_finds_them_with_the_sandbox_off(tmp_path: Path, content_repo: ContentRepo) -> None:
    dumps, state, output = _build(tmp_path, content_repo, "off")
    _pictures(state)
    assert dumps
    text = json.dumps(dumps)
    assert [c for c in all_canaries() if c in text], (
        "the probe must work, or the sandboxed test proves nothing"
    )
    assert all(dump["agent"] == "connected" for dump in dumps)
    # Warned for every site whose build ran content unconfined: MkDocs, and the images stage
    # of the static site too.
    assert output.count('sandbox = "off"') >= 2, output


# The images stage in a fresh process: which modules did the deployer's side import?
NO_DECODING = """
import json, sys
from pathlib import Path
from sitedeploy.config import ImagesConfig
from sitedeploy.images import process_site
site, cache, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
report = process_site(site, "/", ImagesConfig(widths=(480,)), cache, sandbox=mode)
pil = sorted(m for m in sys.modules if m.startswith("PIL"))
print(json.dumps({"decoded": report.decoded, "modules": pil}))
"""


def test_the_deployer_process_never_decodes_an_image(tmp_path: Path) -> None:
    for mode in ("bwrap", "off"):
        site = tmp_path / mode
        (site / "img").mkdir(parents=True)
        Image.linear_gradient("L").resize((1000, 500)).save(site / "img" / "a.png")
        (site / "index.html").write_text('<img src="img/a.png" alt="a">\n')
        out = subprocess.run(
            [sys.executable, "-c", NO_DECODING, str(site), str(tmp_path / f"cache-{mode}"), mode],
            capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        result = json.loads(out.stdout)
        assert result["decoded"] == 1 and "<picture>" in (site / "index.html").read_text()
        # The package (for its version, part of the cache key), never PIL.Image or a plugin.
        assert result["modules"] == ["PIL", "PIL._version"], result
