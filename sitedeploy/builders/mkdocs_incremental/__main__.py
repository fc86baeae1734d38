"""``python -m <this package>``: run the incremental build."""

from .builder import main

raise SystemExit(main())
