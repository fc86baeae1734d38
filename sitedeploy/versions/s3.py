"""S3: aliases are copies (no symlinks), and removing a line deletes its keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import TargetError
from ..progress import Progress
from ..release.transaction import Rules
from ..targets import Target

if TYPE_CHECKING:
    from .layout import Family
    from .state import FamilyState


def sync_alias_copies(family: Family, state: FamilyState, rules: Rules, progress: Progress) -> None:
    raise TargetError(f"target '{family.target}': aliases on S3 are not supported yet")


def remove_s3_line(line: Target) -> None:
    raise TargetError(f"target '{line.name}': removing a line on S3 is not supported yet")
