"""``python -m`` this package: build one site, the way ``mkdocs build`` does, with a cache.

    python -m sitedeploy.builders.mkdocs_incremental --config-file mkdocs.yml \\
        --site-dir site --cache .cache [--strict] [--full]

The last line printed says which way the build went and why (``PREFIX``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mkdocs.exceptions import Abort, ConfigurationError

from .builder import PREFIX, build_site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sitedeploy.builders.mkdocs_incremental")
    parser.add_argument("--config-file", "-f", type=Path, required=True)
    parser.add_argument("--site-dir", "-d", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="folder kept between builds of this site")
    parser.add_argument("--full", action="store_true", help="render every page (and refresh the cache)")
    parser.add_argument("--strict", action="store_true", help="fail on warnings, as mkdocs build --strict")
    args = parser.parse_args(argv)
    _log_like_mkdocs()
    try:
        outcome = build_site(args.config_file, args.site_dir, args.cache, full=args.full, strict=args.strict)
    except Abort as e:  # as ``mkdocs build`` says it: the warnings above are the reason
        print(f"\n{e}", file=sys.stderr)
        return 1
    except ConfigurationError as e:
        print(f"ERROR    -  {args.config_file}: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # an unwritable cache or site folder: a user-fixable problem
        print(f"ERROR    -  {e.filename or args.cache}: {e.strerror}", file=sys.stderr)
        return 1
    except Exception as e:  # content code (an extension, a theme) failed: MkDocs logged where
        print(f"ERROR    -  {args.config_file}: build failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(PREFIX + outcome.summary, flush=True)
    return 0


def _log_like_mkdocs() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)-8s-  %(message)s"))
    logger = logging.getLogger("mkdocs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
