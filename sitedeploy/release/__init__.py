"""Releases: what a release contains (``manifest``), what publishing it changes (``diff``),
what a target remembers about it (``records``, ``history``), the target's lock (``lock``),
pins and marks (``control``), and the transaction every release, rollback, repair and
retirement goes through (``transaction``, ``retire``)."""
