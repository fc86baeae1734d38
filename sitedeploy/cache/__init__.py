"""The shared build cache: site builds made once, on any machine, reused by every other.

Issue 27's answer to "outgrowing one machine": CI runners (``sitedeploy build --push``) or
any production agent put each site's build, keyed by everything that decides its bytes, in a
folder or an S3 bucket (``[build] cache``); agents look there before building
(``[build] mode``). Stores and their conditional create: :mod:`.stores` (folder),
:mod:`sitedeploy.targets.s3.cache_store` (bucket); the packed, signed entry: :mod:`.entries`, :mod:`.packing`,
:mod:`.signing`. How a build uses it (keys, modes, trust levels): :mod:`sitedeploy.build.shared`.

Trust: an entry is used only once its SSH signature (a key of ``cache_allowed_signers``, for
its own key) and every file's sha256 check out. Only production builds write; previews read
(a production-signed entry holds exactly what the preview would build from the same tree).
"""

from .entries import Fetched, SharedCache
from .stores import FolderStore, Store, StoreError, open_store

__all__ = ["Fetched", "FolderStore", "SharedCache", "Store", "StoreError", "open_store"]
