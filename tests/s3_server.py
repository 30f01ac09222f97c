"""A real S3 API server on 127.0.0.1 for the tests: moto's S3 service in its own process (``python
tests/s3_server.py`` prints ``PORT <n>`` once it listens).

One correction sits in front of moto (5.x): its CompleteMultipartUpload answer's root element is
``CompleteMultipartUploadResponse`` where S3 writes ``CompleteMultipartUploadResult``; the AWS C++ SDK inside pyarrow
then finds no ETag and reports an error embedded in a 200 response, so every object of 10 MB or more (a multipart
upload) would fail against moto while it works against S3. The answer is renamed to S3's; nothing else is touched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

WRONG, RIGHT = b"CompleteMultipartUploadResponse", b"CompleteMultipartUploadResult"


def _serve() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    moto = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        answer: dict = {}
        body = b"".join(moto(environ, lambda status, headers, exc=None: answer.update(status=status, headers=headers)))
        headers = answer["headers"]
        if WRONG in body:  # (a HEAD's Content-Length is the object's size: only a changed body gets a new one)
            body = body.replace(WRONG, RIGHT)
            headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in headers]
        start_response(answer["status"], headers)
        return [body]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


@contextmanager
def s3_server() -> Iterator[str]:
    """Start the server; yields its endpoint ``127.0.0.1:<port>``; stops it (only the process started here)."""
    with s3_server_process() as (endpoint, _):
        yield endpoint


@contextmanager
def s3_server_process() -> Iterator[tuple[str, subprocess.Popen]]:
    """``s3_server`` that also yields the server's process (a test may kill it: the store lost mid-run)."""
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        line = proc.stdout.readline()
        while not line.startswith("PORT ") and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError("the S3 test server did not start")
        port = int(line.split()[1])
        while True:  # the port is announced just before the server listens on it
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the S3 test server did not start") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def create_bucket(endpoint: str, bucket: str) -> None:
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", region="us-east-1", allow_bucket_creation=True)
    fs.create_dir(bucket)


if __name__ == "__main__":
    _serve()
