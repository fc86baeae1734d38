"""What a page's Markdown render looked up: stand-ins for the file set and the config.

The render is handed these instead of the real objects; what they note is part of the keys
of the render (:mod:`.keys`), so a page re-renders only when what it looked up changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files


class LinkLookups:
    """The file set as one page's Markdown render sees it, noting what the render looked up.

    MkDocs 1.6 resolves each link of a page with ``files.get_file_from_path`` (the target,
    then the guesses of a "did you mean") and reads the ``url`` and ``inclusion`` of the file
    found: the render depends on what those paths find, not on the rest of the set. So a page
    added, removed or renamed re-renders only the pages that looked up its path. This stands
    in for the set while one page renders; any other use of it (iterating, another method)
    notes that the render may depend on the whole set (:attr:`whole`)."""

    def __init__(self, files: Files, rows: Mapping[str, list[str]]) -> None:
        self._files, self._rows = files, rows  # rows: :func:`.keys.file_rows` of files
        self.found: dict[str, list[str] | None] = {}
        self.whole = False

    def get_file_from_path(self, path: str) -> File | None:
        file = self._files.get_file_from_path(path)
        self.found[path] = None if file is None else self._rows[file.src_uri]
        return file

    def __getattr__(self, name: str) -> Any:  # any name this class does not define
        self.whole = True
        return getattr(self._files, name)

    def __iter__(self) -> Iterator[File]:
        self.whole = True
        return iter(self._files)

    def __len__(self) -> int:
        self.whole = True
        return len(self._files)

    def __contains__(self, path: str) -> bool:
        self.whole = True
        return path in self._files


class ConfigReads:
    """The config as one page's Markdown render sees it, noting which settings it read.

    A render reads a few settings (``markdown_extensions``, ``mdx_configs``, ``validation``,
    ``use_directory_urls``; ``plugins`` to run page events): keyed by those alone, it is reused
    after an edit of ``copyright``, ``extra`` or the theme's options, which only templates
    show. Any other use (iterating, a method, an attribute that is no setting) notes that it
    may depend on the whole config (:attr:`whole`). Attributes set (MkDocs sets
    ``_current_page`` around each page) are set on the config itself."""

    __slots__ = ("_config", "read", "whole")

    def __init__(self, config: MkDocsConfig) -> None:
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "read", set())
        object.__setattr__(self, "whole", False)

    def _note(self, name: object) -> None:
        if isinstance(name, str) and name in self._config.data:
            self.read.add(name)
        else:
            object.__setattr__(self, "whole", True)

    def __getitem__(self, name: str) -> Any:
        self._note(name)
        return self._config[name]

    def get(self, name: str, default: Any = None) -> Any:
        self._note(name)
        return self._config.get(name, default)

    def __getattr__(self, name: str) -> Any:  # any name this class does not define
        self._note(name)
        return getattr(self._config, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._config, name, value)

    def __contains__(self, name: object) -> bool:
        self._note(name)
        return name in self._config

    def __iter__(self) -> Iterator[str]:
        object.__setattr__(self, "whole", True)
        return iter(self._config)

    def __len__(self) -> int:
        object.__setattr__(self, "whole", True)
        return len(self._config)
