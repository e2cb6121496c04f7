"""A real S3-compatible HTTP server for the tests: moto's server mode, on loopback.

boto3, django-storages and `requests` talk to it over HTTP exactly as they would to S3
or MinIO; nothing in boto3 is patched. One gap is filled here: moto (5.2) serves a
presigned GET whatever its signature and however old it is, where S3 and MinIO answer
403. `PresignedUrlCheck` wraps moto's WSGI app and checks a presigned request's SigV4
query signature and expiry the way S3 does, so a test can see a link stop working.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

ACCESS_KEY = "clypaitestkey"
SECRET_KEY = "clypai-test-secret"
REGION = "us-east-1"

_SIGNATURE_PARAM = "X-Amz-Signature"


def _s3_error(start_response, status: str, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response(
        status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]


class PresignedUrlCheck:
    """WSGI middleware: refuse presigned (SigV4 query) requests that S3 would refuse."""

    def __init__(self, app, *, access_key: str, secret_key: str):
        self.app = app
        self.access_key = access_key
        self.secret_key = secret_key

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            # A browser's CORS preflight carries the URL but no credentials of its own: S3
            # answers it from the bucket's CORS rules alone.
            return self.app(environ, start_response)
        raw_query = environ.get("QUERY_STRING", "")
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        if _SIGNATURE_PARAM not in params:
            return self.app(environ, start_response)
        try:
            signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=UTC
            )
            expires = int(params["X-Amz-Expires"])
            key_id, _, region, service, _ = params["X-Amz-Credential"].split("/")
        except (KeyError, ValueError):
            return _s3_error(
                start_response,
                "400 Bad Request",
                "AuthorizationQueryParametersError",
                "Malformed presigned URL",
            )
        if datetime.now(UTC) > signed_at + timedelta(seconds=expires):
            return _s3_error(start_response, "403 Forbidden", "AccessDenied", "Request has expired")
        if key_id != self.access_key:
            return _s3_error(
                start_response,
                "403 Forbidden",
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        if params.get("X-Amz-SignedHeaders") != "host":
            return _s3_error(
                start_response,
                "403 Forbidden",
                "SignatureDoesNotMatch",
                "Only host-signed presigned URLs are checked here",
            )
        if (
            self._signature(environ, raw_query, region, service, expires)
            != params[_SIGNATURE_PARAM]
        ):
            return _s3_error(
                start_response,
                "403 Forbidden",
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return self.app(environ, start_response)

    def _signature(self, environ, raw_query: str, region: str, service: str, expires: int) -> str:
        from botocore.auth import S3SigV4QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        # The canonical request is built from the URL as sent (still percent-encoded),
        # less the signature itself.
        raw_path = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").split("?")[0]
        unsigned_query = "&".join(
            part for part in raw_query.split("&") if not part.startswith(f"{_SIGNATURE_PARAM}=")
        )
        request = AWSRequest(
            method=environ["REQUEST_METHOD"],
            url=f"http://{environ['HTTP_HOST']}{raw_path}?{unsigned_query}",
        )
        request.context["timestamp"] = dict(parse_qsl(raw_query))["X-Amz-Date"]
        signer = S3SigV4QueryAuth(
            Credentials(self.access_key, self.secret_key), service, region, expires=expires
        )
        canonical = signer.canonical_request(request)
        return signer.signature(signer.string_to_sign(request, canonical), request)


@dataclass
class S3Server:
    """Where the test S3 server listens, and how to reach it."""

    endpoint_url: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def create_bucket(self) -> str:
        name = f"clypai-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage_options(self, *, bucket: str, location: str = "") -> dict:
        """The OPTIONS clypai/settings.py builds for S3Storage when CLYPAI_S3_BUCKET is set."""
        return {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint_url,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region_name": self.region,
            "location": location,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
            "addressing_style": "path",
            "signature_version": "s3v4",
        }


_CORS_PATCH = threading.Lock()


def _backend_app_without_global_cors(service):
    """moto's app for `service` without the allow-everything CORS that moto's server adds
    to every answer by default: a bucket's own CORS rules decide, as on S3."""
    from moto.moto_server import werkzeug_app

    with _CORS_PATCH:
        before = werkzeug_app.DISABLE_GLOBAL_CORS
        werkzeug_app.DISABLE_GLOBAL_CORS = True
        try:
            return werkzeug_app.create_backend_app(service)
        finally:
            werkzeug_app.DISABLE_GLOBAL_CORS = before


def start_s3_server(*, bucket_cors: bool = False):
    """Start moto's server on 127.0.0.1 and a free port; returns (server, S3Server).

    `bucket_cors=True`: browsers are answered by each bucket's CORS rules alone (moto
    otherwise allows every origin), for tests of what a browser may send to the bucket.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    if bucket_cors:
        server._server.app.create_app = _backend_app_without_global_cors
    # Wrap the app before the first request reaches it.
    server._server.app = PresignedUrlCheck(
        server._server.app, access_key=ACCESS_KEY, secret_key=SECRET_KEY
    )
    host, port = server.get_host_and_port()
    return server, S3Server(endpoint_url=f"http://{host}:{port}")


def object_key(location: str, name: str) -> str:
    return f"{location.strip('/')}/{name}" if location else name
