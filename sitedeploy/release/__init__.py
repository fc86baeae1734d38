"""Releases: what a release contains (``manifest``), what publishing it changes (``diff``),
what a target remembers about it (``records``), the target's lock (``lock``) and the one
transaction every change to a target goes through (``transaction``)."""
