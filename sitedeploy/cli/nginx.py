"""``sitedeploy nginx-config``: the lines to put once in the nginx server block of a local or
SSH target, so that it serves the live release's redirects, headers and 404 pages
(:mod:`sitedeploy.redirects.nginx`)."""

from __future__ import annotations

from ..config import Config, LocalTargetConfig, SSHTargetConfig
from ..errors import ConfigError
from .main import Options, cli, emit, pass_options, run
from .verbs import target_option


@cli.command("nginx-config")
@target_option
@pass_options
def nginx_config(opts: Options, target: str | None) -> None:
    """Print the nginx server-block lines that serve a target's redirects, headers and 404s.

    Include them once; each release carries its own generated rules, which nginx reads when
    the target's reload_command reloads it after a switch."""
    config = run(opts, opts.load)
    snippets = run(opts, lambda: _snippets(config, target))
    emit(opts, snippets, lambda: "\n".join(f"# target '{n}'\n{s}" for n, s in snippets.items()))


def _snippets(config: Config, target: str | None) -> dict[str, str]:
    from ..redirects.nginx import snippet

    chosen = config.target(target)
    out = {}
    for name, cfg in chosen.items():
        if isinstance(cfg, LocalTargetConfig):
            out[name] = snippet(str(config.resolve(cfg.path)))
        elif isinstance(cfg, SSHTargetConfig):
            out[name] = snippet(cfg.path)
    if not out:
        raise ConfigError(
            "nginx-config is for local and SSH targets; an S3 target serves redirects as objects "
            "(see the manual's 'Redirects and headers')"
        )
    return out
