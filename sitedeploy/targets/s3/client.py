"""boto3 for the S3 target: one shared client, and the translation of its errors.

Credentials come only from the standard AWS chain (environment, ``profile``, instance or
container role); sitedeploy never reads them from deploy.toml and never prints them. Every
botocore/boto3 exception is turned here into a one-line :class:`TargetError` of its kind
(``NotFound``, ``PermissionDenied``, ``ServerError``, ...; see ``errors``) that names the target,
the bucket and the operation, and says what to do next. The tables below are the whole
mapping: ``_CODES`` (S3/CloudFront error codes), ``_STATUSES`` (bare HTTP statuses), ``_TYPES``
(botocore exception types). An exception no table knows is a bug and propagates.
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
from ...errors import (
    AuthenticationFailed,
    Conflict,
    Misconfigured,
    NotFound,
    PermissionDenied,
    ServerError,
    TargetError,
    TimedOut,
    Unreachable,
)
from ...errors import scrub as scrub_credentials

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_s3 import S3Client

_SECRETS = re.compile(
    r"A[KS]IA[A-Z0-9]{12,}|Credential=[^,\s]+|Signature=[0-9a-f]+|(?<![\w/+])[A-Za-z0-9/+]{40}(?![\w/+=])"
)

Kind = tuple[type[TargetError], str, bool | None]
"""(the error class, what went wrong and what to do, a retryable override or None)."""

_REGION = "the bucket is in another region; set 'region' to the bucket's region"
_THROTTLED = "throttled by the server beyond the retries; try again later or lower max_concurrency"
_FAILED = "the server failed beyond the retries; try again later"

# S3 and CloudFront error codes. An expired token or a skewed clock is an authentication
# failure that fixes itself (the role refreshes, NTP catches up): retryable per instance.
_CODES: dict[str, Kind] = {
    "NoSuchBucket": (NotFound, "the bucket does not exist; check 'bucket' (and 'endpoint_url')", None),
    "NoSuchDistribution": (
        NotFound,
        "no such CloudFront distribution; check 'cloudfront_distribution_id'",
        None,
    ),
    "AccessDenied": (
        PermissionDenied,
        "access denied; grant the credentials s3:GetObject, PutObject, DeleteObject "
        "and ListBucket on the bucket",
        None,
    ),
    "AllAccessDisabled": (PermissionDenied, "access to the bucket is disabled", None),
    "InvalidAccessKeyId": (
        AuthenticationFailed,
        "the AWS access key is not known to the server; check the credential chain",
        None,
    ),
    "SignatureDoesNotMatch": (
        AuthenticationFailed,
        "the request signature does not match; check the secret key in the chain",
        None,
    ),
    "ExpiredToken": (
        AuthenticationFailed,
        "the AWS credentials have expired; refresh them (aws sso login, or the role)",
        True,
    ),
    "ExpiredTokenException": (
        AuthenticationFailed,
        "the AWS credentials have expired; refresh them (aws sso login, or the role)",
        True,
    ),
    "RequestExpired": (AuthenticationFailed, "the request expired; check this machine's clock", True),
    "RequestTimeTooSkewed": (AuthenticationFailed, "this machine's clock is off; sync it", True),
    "PermanentRedirect": (Misconfigured, _REGION, None),
    "AuthorizationHeaderMalformed": (Misconfigured, _REGION, None),
    "IllegalLocationConstraintException": (Misconfigured, _REGION, None),
    "OperationAborted": (Conflict, "another operation on the bucket is in progress; retry later", None),
    "SlowDown": (ServerError, _THROTTLED, None),
    "Throttling": (ServerError, _THROTTLED, None),
    "ThrottlingException": (ServerError, _THROTTLED, None),
    "RequestLimitExceeded": (ServerError, _THROTTLED, None),
    "TooManyInvalidationsInProgress": (
        ServerError,
        "CloudFront has too many invalidations in progress; retry later",
        None,
    ),
    "InternalError": (ServerError, _FAILED, None),
    "ServiceUnavailable": (ServerError, _FAILED, None),
}
# When the code is unknown (S3-compatible servers, HEAD requests answer with a bare status).
_STATUSES: dict[int, Kind] = {
    301: (Misconfigured, _REGION, None),
    403: _CODES["AccessDenied"],
    404: (NotFound, "not found; check 'bucket', 'prefix' and 'endpoint_url'", None),
    409: (Conflict, "the bucket is being changed by someone else; retry later", None),
    412: (Conflict, "the object changed while we wrote it (another deployer?); retry later", None),
    429: (ServerError, _THROTTLED, None),
}
_NO_CREDENTIALS = "no AWS credentials found; set AWS_PROFILE or the AWS_* variables, or use a role"
# botocore exception types, most specific first (a ConnectTimeoutError is a ConnectionError).
_TYPES: tuple[tuple[type[Exception] | tuple[type[Exception], ...], type[TargetError], str], ...] = (
    (
        (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError),
        AuthenticationFailed,
        _NO_CREDENTIALS,
    ),
    (
        (botocore.exceptions.CredentialRetrievalError, botocore.exceptions.SSOError),
        AuthenticationFailed,
        "cannot get AWS credentials ({detail}); check the profile, or run aws sso login",
    ),
    (botocore.exceptions.ProfileNotFound, Misconfigured, "{detail}; check 'profile' and ~/.aws/config"),
    (botocore.exceptions.NoRegionError, Misconfigured, "no region; set 'region' (or AWS_REGION)"),
    (
        (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError),
        TimedOut,
        "the S3 endpoint timed out; will retry",
    ),
    (
        (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError),
        Unreachable,
        "cannot reach the S3 endpoint (network or 'endpoint_url'); will retry",
    ),
    (
        (botocore.exceptions.IncompleteReadError, botocore.exceptions.ResponseStreamingError),
        Unreachable,
        "the connection to the S3 endpoint dropped; will retry",
    ),
)


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
    """One line, no key ids, signatures or anything shaped like a secret (botocore quotes the
    signed request: 40-character secret keys, ``Credential=``, ``Signature=``)."""
    return _SECRETS.sub("***", scrub_credentials(" ".join(text.split())))[:200]


@contextmanager
def translated(target: str, where: str, operation: str) -> Iterator[None]:
    """Turn a boto3/botocore exception raised in the block into the TargetError of its kind.
    Anything else (a bug, a ParamValidationError from our own call) propagates unchanged."""
    try:
        yield
    except TargetError:
        raise
    except Exception as exc:
        kind = classify(exc)
        if kind is None:
            raise
        cls, why, retryable = kind
        raise cls(f"target '{target}': cannot {operation} in {where}: {why}", retryable=retryable) from exc


def classify(exc: BaseException) -> Kind | None:
    """The row of the tables above for a boto3/botocore exception; None for anything else."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return _client_error(exc)
    if isinstance(exc, boto3.exceptions.S3UploadFailedError | boto3.exceptions.S3TransferFailedError):
        cause = exc.__cause__ or exc.__context__
        return classify(cause) if cause else (ServerError, f"transfer failed ({scrub(str(exc))})", None)
    for types, cls, why in _TYPES:
        if isinstance(exc, types):
            return cls, why.format(detail=scrub(str(exc))), None
    return None


def _client_error(exc: botocore.exceptions.ClientError) -> Kind:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _CODES:
        return _CODES[code]
    if code.isdigit() and int(code) in _STATUSES:
        return _STATUSES[int(code)]
    if status in _STATUSES:
        return _STATUSES[status]
    message = scrub(str(error.get("Message", ""))) or "no details"
    if status >= 500:
        return (
            ServerError,
            f"the server failed ({code or status}: {message}) beyond the retries; try again later",
            None,
        )
    return TargetError, f"{code or status}: {message}", None


def error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError ('NoSuchKey', '404', 'PreconditionFailed'), else ''."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""
