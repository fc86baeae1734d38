"""An S3 bucket or any S3-compatible service (see :mod:`.target`). boto3 is imported only here."""

from .target import S3Target

__all__ = ["S3Target"]
