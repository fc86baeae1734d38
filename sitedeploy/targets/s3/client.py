"""boto3 for the S3 target: one shared client, and the translation of its errors.

Credentials come only from the standard AWS chain (environment, ``profile``, instance or
container role); sitedeploy never reads them from deploy.toml and never prints them. Every
botocore/boto3 exception is turned here into a one-line :class:`TargetError` that names the
target, the bucket and the operation, says whether retrying can help, and what to do next.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
import boto3.exceptions
import botocore.config
import botocore.exceptions
import botocore.loaders
import botocore.session

from ...config import S3TargetConfig
from ...errors import TargetError

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_s3 import S3Client

_SECRETS = re.compile(
    r"A[KS]IA[A-Z0-9]{12,}|Credential=[^,\s]+|Signature=[0-9a-f]+|(?<![\w/+])[A-Za-z0-9/+]{40}(?![\w/+=])"
)

_NOT_RETRYABLE: dict[str, str] = {
    "NoSuchBucket": "the bucket does not exist; check 'bucket' (and 'endpoint_url')",
    "AccessDenied": "access denied; grant the credentials s3:GetObject, PutObject, DeleteObject "
    "and ListBucket on the bucket",
    "AllAccessDisabled": "access to the bucket is disabled",
    "InvalidAccessKeyId": "the AWS access key is not known to the server; check the credential chain",
    "SignatureDoesNotMatch": "the request signature does not match; check the secret key in the chain",
    "PermanentRedirect": "the bucket is in another region; set 'region' to the bucket's region",
    "AuthorizationHeaderMalformed": "wrong region; set 'region' to the bucket's region",
    "IllegalLocationConstraintException": "wrong region; set 'region' to the bucket's region",
    "NoSuchDistribution": "no such CloudFront distribution; check 'cloudfront_distribution_id'",
}
_RETRYABLE: dict[str, str] = {
    "ExpiredToken": "the AWS credentials have expired; refresh them (aws sso login, or the role)",
    "ExpiredTokenException": "the AWS credentials have expired; refresh them (aws sso login, or the role)",
    "RequestExpired": "the request expired; check this machine's clock",
    "RequestTimeTooSkewed": "this machine's clock is off; sync it",
    "SlowDown": "throttled by S3 beyond the retries; try again later or lower max_concurrency",
    "Throttling": "throttled beyond the retries; try again later",
    "TooManyInvalidationsInProgress": "CloudFront has too many invalidations in progress; retry later",
}


_loader: botocore.loaders.Loader | None = None
_loader_lock = threading.Lock()


def new_session(cfg: S3TargetConfig) -> boto3.session.Session:
    """A session of its own (credentials are resolved afresh each time), sharing with every other
    session of this process the loader of the service models: parsing them again is most of
    the cost of a client (about 0.1 s of each target's run in a long-lived agent)."""
    global _loader
    core = botocore.session.get_session()
    with _loader_lock:
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
        session = boto3.session.Session(
            profile_name=cfg.profile, region_name=cfg.region, botocore_session=core
        )
        paths = _loader.search_paths  # each boto3 session appends its data folder: keep one
        paths[:] = list(dict.fromkeys(paths))
    return session


def client_config(cfg: S3TargetConfig, **s3: Any) -> botocore.config.Config:
    extra: dict[str, Any] = {"s3": s3} if s3 else {}
    return botocore.config.Config(
        retries={"mode": cfg.retry_mode, "max_attempts": cfg.max_attempts},
        max_pool_connections=cfg.max_concurrency + 4,
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        **extra,
    )


class Clients:
    """boto3 clients made on first use and shared by every thread (clients are thread-safe;
    sessions are not, hence the lock)."""

    def __init__(self, cfg: S3TargetConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._s3: S3Client | None = None
        self._cloudfront: CloudFrontClient | None = None
        self._session: boto3.session.Session | None = None

    def session(self) -> boto3.session.Session:
        if self._session is None:
            self._session = new_session(self.cfg)
        return self._session

    @property
    def s3(self) -> S3Client:
        with self._lock:
            if self._s3 is None:
                style = "path" if self.cfg.endpoint_url else "auto"  # S3-compatible servers want paths
                config = client_config(self.cfg, addressing_style=style)
                self._s3 = self.session().client("s3", endpoint_url=self.cfg.endpoint_url, config=config)
            return self._s3

    @property
    def cloudfront(self) -> CloudFrontClient:
        with self._lock:
            if self._cloudfront is None:
                config = client_config(self.cfg)
                url = self.cfg.cloudfront_endpoint_url
                self._cloudfront = self.session().client("cloudfront", endpoint_url=url, config=config)
            return self._cloudfront

    def close(self) -> None:
        with self._lock:
            for client in (self._s3, self._cloudfront):
                if client is not None:
                    client.close()
            self._s3 = self._cloudfront = None


def scrub(text: str) -> str:
    """One line, no key ids, signatures or anything shaped like a secret."""
    return _SECRETS.sub("***", " ".join(text.split()))[:200]


@contextmanager
def translated(target: str, where: str, operation: str) -> Iterator[None]:
    """Turn any boto3/botocore exception raised in the block into a TargetError."""
    try:
        yield
    except TargetError:
        raise
    except Exception as exc:
        why, retryable = explain(exc)
        if why is None:
            raise
        raise TargetError(
            f"target '{target}': cannot {operation} in {where}: {why}", retryable=retryable
        ) from exc


def explain(exc: BaseException) -> tuple[str | None, bool]:
    """(what went wrong and what to do, retryable) for a boto3 exception; (None, _) otherwise."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return _client_error(exc)
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return "no AWS credentials found; set AWS_PROFILE or the AWS_* variables, or use a role", False
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return f"{scrub(str(exc))}; check 'profile' and ~/.aws/config", False
    if isinstance(exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectionError):
        return "cannot reach the S3 endpoint (network or 'endpoint_url'); will retry", True
    if isinstance(exc, botocore.exceptions.ReadTimeoutError | botocore.exceptions.ConnectTimeoutError):
        return "the S3 endpoint timed out; will retry", True
    if isinstance(exc, boto3.exceptions.S3UploadFailedError | boto3.exceptions.S3TransferFailedError):
        cause = exc.__cause__ or exc.__context__
        return explain(cause) if cause else (f"transfer failed ({scrub(str(exc))})", True)
    if isinstance(exc, botocore.exceptions.BotoCoreError | boto3.exceptions.Boto3Error):
        return f"{type(exc).__name__}: {scrub(str(exc))}", True
    return None, False


def _client_error(exc: botocore.exceptions.ClientError) -> tuple[str, bool]:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _NOT_RETRYABLE:
        return _NOT_RETRYABLE[code], False
    if code in _RETRYABLE:
        return _RETRYABLE[code], True
    if status == 403 or code == "403":
        return _NOT_RETRYABLE["AccessDenied"], False
    if status == 301:
        return _NOT_RETRYABLE["PermanentRedirect"], False
    message = scrub(str(error.get("Message", ""))) or "no details"
    if status >= 500 or status == 429:
        return f"the server failed ({code or status}: {message}) beyond the retries; try again later", True
    return f"{code or status}: {message}", False


def error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError ('NoSuchKey', '404', 'PreconditionFailed'), else ''."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""
