"""Versioned docs and preview deploys: many release lines served side by side on one target.

A versioned target serves every version the git refs define (``versions = "tag:v*"``), each
at ``<version>/`` and each an independent release line with its own history and rollback;
aliases (``latest``, ``stable``) and the default version are one root release away. Previews
(``previews = "branch:*"``) are the same machinery for branches, under ``preview_path``.

Modules: ``naming`` (tags → versions, alias rules, slugs), ``state`` (what the root serves:
``versions.json`` in mike's format, the redirect page), ``layout`` (where the lines and the
root live on each target type), ``building`` (one version's or preview's build),
``publish`` (the two transactions: a line, the root), ``api`` (the versions commands),
``previews``, ``mike`` (import from a mike gh-pages branch), ``agent`` (the agent's hook),
``s3`` (alias copies on S3).
"""
