"""The lake's object store through the minio client: bucket, lifecycle rule, uploads, listing.

Connection problems and server errors become :class:`StoreUnavailable` (the sink backs off and
keeps its files); the client is built without urllib3's own retries so an outage is noticed in
seconds and handled in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.error import MinioException, S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

from meterstream.settings import S3Settings
from sinks.lake.naming import PREFIX
from sinks.runtime.destination import StoreUnavailable

log = logging.getLogger(__name__)

LIFECYCLE_RULE_ID = "meterstream-expire-raw-readings"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


def minio_client(s3: S3Settings) -> Minio:
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=60.0),
        retries=urllib3.Retry(total=0),
        maxsize=4,
    )
    return Minio(
        s3.host,
        access_key=s3.access_key,
        secret_key=s3.resolved_secret_key().get_secret_value(),
        secure=s3.secure,
        region=s3.region,
        http_client=http,
    )


class LakeStore:
    def __init__(self, s3: S3Settings, bucket: str) -> None:
        self.bucket = bucket
        self._client = minio_client(s3)

    def _unavailable(self, action: str, exc: Exception) -> StoreUnavailable:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StoreUnavailable(f"S3 {action} failed: {text}")

    def ensure_bucket(self, expire_after_days: int) -> str:
        """Create the bucket if missing and apply (or remove) the expiry rule; says what it did."""
        try:
            created = not self._client.bucket_exists(self.bucket)
            if created:
                self._client.make_bucket(self.bucket)
            rule = self._apply_lifecycle(expire_after_days)
        except S3Error:
            raise
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unavailable("bucket check", exc) from None
        return f"bucket {self.bucket} {'created' if created else 'exists'}; {rule}"

    def _apply_lifecycle(self, expire_after_days: int) -> str:
        current = self._client.get_bucket_lifecycle(self.bucket)
        others = [r for r in (current.rules if current else []) if r.rule_id != LIFECYCLE_RULE_ID]
        if expire_after_days <= 0:
            if current and len(others) != len(current.rules):
                if others:
                    self._client.set_bucket_lifecycle(self.bucket, LifecycleConfig(others))
                else:
                    self._client.delete_bucket_lifecycle(self.bucket)
            return "raw files kept (no expiry)"
        rule = Rule(
            ENABLED,
            rule_filter=Filter(prefix=PREFIX),
            rule_id=LIFECYCLE_RULE_ID,
            expiration=Expiration(days=expire_after_days),
        )
        self._client.set_bucket_lifecycle(self.bucket, LifecycleConfig([*others, rule]))
        return f"raw files expire after {expire_after_days} days"

    def upload(self, key: str, path: Path) -> None:
        try:
            self._client.fput_object(self.bucket, key, str(path), content_type=PARQUET_CONTENT_TYPE)
        except S3Error as exc:
            if exc.code in {"AccessDenied", "NoSuchBucket", "InvalidAccessKeyId"}:
                raise  # configuration, not an outage: fail loudly
            raise self._unavailable("upload", exc) from None
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unavailable("upload", exc) from None

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
            if obj.object_name is not None:
                yield obj.object_name, int(obj.size or 0)

    def download(self, key: str, path: Path) -> None:
        self._client.fget_object(self.bucket, key, str(path))

    def delete(self, key: str) -> None:
        self._client.remove_object(self.bucket, key)
