"""Make the manual's screenshots: real output of sitedeploy, and the manual as a browser shows it.

    .venv/bin/python scripts/screenshots.py      # writes sites/docs/docs/img/*.png

In a temporary folder it runs the Getting started session (a new MkDocs project: init,
deploy, edit, deploy, rollback), renders what ``deploy`` and ``status`` printed as a terminal
page, and photographs it with headless Chromium; then it builds this manual with MkDocs and
photographs its home page. The PNGs are quantized to a small palette, so the three
stay well under 300 KB; the images stage then makes their responsive variants on every deploy.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "sites/docs/docs/img"
BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
GIT_ENV = {"GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com"}
GIT_ENV |= {"GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com"}
TERMINAL_CSS = (
    "body{margin:0;background:#1e1e2e;color:#e0e0e0;font:14px/1.45 'DejaVu Sans Mono',monospace}"
    "pre{margin:0;padding:18px 22px;white-space:pre-wrap}.p{color:#8bd5a0}.c{color:#f5c26b}"
)


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}")
    return done.stdout


def session(work: Path) -> dict[str, str]:
    """The Getting started session; what ``deploy`` (the second one) and ``status`` printed."""
    env = {**os.environ, **GIT_ENV, "PATH": f"{BIN}:{os.environ['PATH']}", "COLUMNS": "100"}
    run(["mkdocs", "new", "my-docs"], work, env)
    repo = work / "my-docs"
    for step in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "My docs"],
    ):
        run(step, repo, env)
    run(["sitedeploy", "init"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "Deploy with sitedeploy"], repo, env)
    run(["sitedeploy", "deploy"], repo, env)
    with (repo / "docs/index.md").open("a") as page:
        page.write("\nA second paragraph.\n")
    run(["git", "commit", "-qam", "Edit the home page"], repo, env)
    deploy = run(["sitedeploy", "deploy"], repo, env)
    run(["sitedeploy", "rollback"], repo, env)
    status = run(["sitedeploy", "status"], repo, env)
    return {"deploy": deploy.replace(str(work) + "/", "~/"), "status": status.replace(str(work) + "/", "~/")}


def terminal_page(command: str, output: str) -> str:
    prompt = f'<span class="p">~/my-docs$</span> <span class="c">{html.escape(command)}</span>\n'
    body = f"<pre>{prompt}{html.escape(output.rstrip())}</pre>"
    return f"<!doctype html><meta charset=utf-8><style>{TERMINAL_CSS}</style>{body}"


def shoot(url: str, out: Path, width: int, height: int, profile: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    args = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
    subprocess.run([*args, f"--screenshot={out}", url], capture_output=True, check=True, timeout=90)
    small = Image.open(out).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(out, optimize=True)


def manual_page(work: Path) -> Path:
    """This manual built with MkDocs (not strict: the images it shows are being made now)."""
    out = work / "manual"
    run([str(BIN / "mkdocs"), "build", "-q", "-d", str(out)], ROOT / "sites/docs", dict(os.environ))
    return out / "index.html"


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        printed = session(work)
        for name, command, height in (
            ("deploy", "sitedeploy deploy", 230),
            ("status", "sitedeploy status", 300),
        ):
            page = work / f"{name}.html"
            page.write_text(terminal_page(command, printed[name]))
            shoot(
                page.as_uri(),
                IMG / f"{name}-output.png" if name == "deploy" else IMG / "status.png",
                1000,
                height,
                work / "profile",
            )
        shoot(manual_page(work).as_uri(), IMG / "served-site.png", 1200, 760, work / "profile")
    for png in sorted(IMG.glob("*.png")):
        print(f"{png.relative_to(ROOT)}: {png.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
