"""Check a site's git tree before it is checked out: names and symlinks.

Links are resolved against the tree itself, component by component, the way the kernel
would walk the checked-out folder: a link inside a path is followed before the next ``..``
is applied. Normalising each link's text on its own is not enough: with ``d/up -> ..`` the
text ``d/up/d/up/../../../x`` normalises to ``d/x`` but really leaves the folder.

Refused, each with a one-line error naming the file:

- a link whose target leaves the site folder (absolute, or ``..`` past the top);
- a link chain that does not end (more than :data:`MAX_HOPS` links, like the kernel's ELOOP);
- a folder link that points at a folder containing it, directly or through other folder
  links (MkDocs walks links, so the site would be infinitely deep);
- names that are not UTF-8, contain control characters (newlines, escapes), are ``.``/``..``
  or longer than a file system allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import SourceError

MAX_HOPS = 40
"""Links followed while resolving one path before it counts as a loop (Linux's MAXSYMLINKS)."""
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4000


@dataclass(frozen=True)
class Entry:
    """One line of ``git ls-tree -r -t -z``: ``kind`` is blob, tree, link or commit."""

    path: str
    kind: str
    oid: str


def parse_listing(listing: bytes, site: str) -> list[Entry]:
    """Entries of a ``ls-tree -r -t -z`` listing; refuses names no site may have."""
    entries = []
    for line in listing.split(b"\0"):
        if not line:
            continue
        meta, raw_name = line.split(b"\t", 1)
        mode, kind, oid = meta.decode().split()
        name = _checked_name(raw_name, site)
        entries.append(Entry(name, "link" if mode == "120000" else kind, oid))
    return entries


def _checked_name(raw: bytes, site: str) -> str:
    shown = f"{site}/{_escaped(raw)}"
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{shown}: file name is not valid UTF-8; rename it (git mv) to UTF-8") from None
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise SourceError(f"{shown}: file name contains a control character; rename it (git mv)")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise SourceError(f"{shown}: '.', '..' or empty path component; rename it")
    if max(len(p.encode()) for p in parts) > MAX_NAME_BYTES or len(raw) > MAX_PATH_BYTES:
        raise SourceError(f"{shown[:200]}...: file name too long for a file system; shorten it")
    return name


def _escaped(raw: bytes) -> str:
    """A name made safe to print: invalid bytes as \\xNN, control characters as escapes."""
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if 32 <= ord(c) != 127 else repr(c)[1:-1] for c in text)


def parse_batch(data: bytes) -> list[bytes]:
    """Contents of the objects in a ``git cat-file --batch`` answer, in order."""
    contents, pos = [], 0
    while pos < len(data):
        header_end = data.index(b"\n", pos)
        size = int(data[pos:header_end].split()[2])
        contents.append(data[header_end + 1 : header_end + 1 + size])
        pos = header_end + 1 + size + 1
    return contents


def check_links(entries: Iterable[Entry], targets: dict[str, bytes], site: str) -> None:
    """Refuse links that leave the tree, never end, or make a folder contain itself."""
    tree = _Tree(entries, targets, site)
    folder_links: dict[str, str] = {}
    for link in sorted(targets):
        resolved = tree.resolve_link(link)
        if tree.kind(resolved) == "tree":
            folder_links[link] = resolved
    _refuse_cycles(folder_links, tree)


class _Tree:
    def __init__(self, entries: Iterable[Entry], targets: dict[str, bytes], site: str) -> None:
        self.kinds = {e.path: e.kind for e in entries}
        self.site = site
        self.targets = {path: self._decode(path, raw) for path, raw in targets.items()}

    def _decode(self, path: str, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SourceError(
                f"{self.site}/{path} -> {_escaped(raw)}: symlink target is not valid UTF-8; fix the link"
            ) from None

    def kind(self, path: str) -> str | None:
        return "tree" if path == "" else self.kinds.get(path)

    def resolve_link(self, link: str) -> str:
        """Where ``link`` really leads, as a path from the site root ("" = the root itself)."""
        directory = link.rpartition("/")[0]
        try:
            return "/".join(self._walk(directory.split("/") if directory else [], [link.rpartition("/")[2]]))
        except _Escapes:
            raise SourceError(
                f"{self.site}/{link} -> {self.targets[link]}: symlink points outside {self.site}/ "
                "(resolved through the links it passes); link to a file inside the site folder, "
                "or commit the file itself"
            ) from None
        except _Loops:
            raise SourceError(
                f"{self.site}/{link} -> {self.targets[link]}: symlink loop (more than {MAX_HOPS} links "
                "to follow); fix or remove the link"
            ) from None

    def _walk(self, done: list[str], todo: list[str]) -> list[str]:
        """Resolve ``todo`` from folder ``done`` like the kernel: links first, then ``..``.

        A component the tree does not have is kept as text (the kernel would stop there, so
        treating it as a plain folder is the cautious choice for any ``..`` after it).
        """
        done, todo, hops = list(done), list(todo), 0
        while todo:
            name = todo.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                if not done:
                    raise _Escapes
                done.pop()
                continue
            here = "/".join([*done, name])
            if self.kinds.get(here) != "link":
                done.append(name)
                continue
            hops += 1
            target = self.targets[here]
            if hops > MAX_HOPS:
                raise _Loops
            if target.startswith("/"):
                raise _Escapes
            todo = target.split("/") + todo
        return done


class _Escapes(Exception):
    pass


class _Loops(Exception):
    pass


def _refuse_cycles(folder_links: dict[str, str], tree: _Tree) -> None:
    """A folder link whose target contains a folder link leading back is an endless tree."""
    inside = {
        link: [other for other in folder_links if target == "" or other.startswith(target + "/")]
        for link, target in folder_links.items()
    }
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for root in sorted(folder_links):
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(inside[root]))]  # iterative: a hostile repo may chain thousands
        while stack:
            link, pending = stack[-1]
            nxt = next(pending, None)
            if nxt is None:
                state[link] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                raise SourceError(
                    f"{tree.site}/{nxt} -> {tree.targets[nxt]}: folder link loop (the folder it "
                    "points at contains the link again); remove the link or point it at a file"
                )
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(inside[nxt])))
