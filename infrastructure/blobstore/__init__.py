"""The blob stores: the local filesystem (``local.py``) and S3-compatible object storage
(``s3.py``, imported only when chosen: boto3 takes a second to import)."""

from infrastructure.blobstore.local import LocalBlobStore

__all__ = ["LocalBlobStore"]
