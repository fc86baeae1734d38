"""The source room: the content repository and what is checked before a commit may build.

- :mod:`.repository`: the bare mirror, refs, commits and exports (:class:`Source`, :class:`Commit`);
- :mod:`.gitrun`: the one way git runs (environment, timeouts, errors);
- :mod:`.signatures`: which commits are signed by whom;
- :mod:`.tree_check`: what a commit's tree may hold (sizes, names, links);
- :mod:`.tag_order`: which tag is newest.
"""

from .repository import Commit, Source, git_path, is_url

__all__ = ["Commit", "Source", "git_path", "is_url"]
