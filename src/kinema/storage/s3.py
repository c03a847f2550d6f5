"""Media in any S3-compatible bucket (AWS, MinIO, R2, Ceph...) through boto3; links are presigned URLs.

Needs the `s3` extra (`pip install 'kinema[s3]'`); importing Kinema without it still works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kinema.storage.base import MissingMedia, StorageError, check_key


class S3Storage:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "",
        access_key: str | None = None,
        secret_key: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or _client(endpoint_url, region, access_key, secret_key)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, source: Path, *, content_type: str) -> None:
        self.client.upload_file(
            str(source), self.bucket, self._key(key), ExtraArgs={"ContentType": content_type}
        )

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes:
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise MissingMedia(f"no media under key {key!r}; it may have expired or been deleted") from None
        return body

    def download(self, key: str, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.get_bytes(key))
        return target

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:  # botocore.exceptions.ClientError; botocore is optional
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"S3 head_object failed for {key!r}: {exc}") from exc
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def url(self, key: str, *, expires_in: int) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_in
        )
        return url


def _client(
    endpoint_url: str | None, region: str | None, access_key: str | None, secret_key: str | None
) -> Any:
    try:
        import boto3
    except ImportError:
        raise StorageError("S3 storage needs boto3; install it with `pip install 'kinema[s3]'`") from None
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or "us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )
