"""Download a published file once into the raw-data folder, atomically and checked by sha256.

Only the standard library is used (`urllib.request`), so fetching a catalog data set needs no
extra package. The opener is injectable so tests never touch the network.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from pipelines.data.storage import write_atomically
from pipelines.runtime.contract import DataValidationError

CHUNK_BYTES = 1 << 20
DIGEST_SUFFIX = ".sha256"
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def fetch_once(
    url: str,
    raw_directory: Path,
    *,
    sha256: str | None = None,
    opener: Callable[..., Any] | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Downloads `url` into `raw_directory` unless it is already there, and checks its sha256.

    The file is streamed to a temporary file in the same folder, hashed on the way, and renamed
    onto its final name only when complete and correct, so an interrupted or rejected download
    never leaves a half-written file that a later run would mistake for the real one.

    When `sha256` is None no published checksum is known, so the digest of the first download is
    recorded next to the file as `<name>.sha256` and later runs verify the cached file against
    it. This pins the first download (trust on first use): it detects a file damaged or
    replaced after the first download, not a first download that was already wrong.

    Args:
        url: where the file is published; its last path segment names the local file.
        raw_directory: the download folder; created (with parents) only when downloading.
        sha256: the expected checksum of the file as downloaded (hex), or None when unknown.
        opener: called as `opener(url, timeout=timeout_s)`; must return a context manager whose
            value has `read(n)`. None means `urllib.request.urlopen`, looked up at call time
            so tests can replace it.
        timeout_s: seconds to wait for the server before giving up.

    Returns:
        The path of the downloaded (or already cached) file.

    Raises:
        DataValidationError: the URL has no file name, the download failed (offline, timeout,
            HTTP error, truncated), or the file does not match `sha256` or the recorded digest.
    """
    name = _file_name(url)
    expected = _normalise_sha256(sha256)
    final = Path(raw_directory) / name
    digest_file = final.with_name(name + DIGEST_SUFFIX)
    if final.exists():
        return _verify_cached(final, digest_file, expected)

    final.parent.mkdir(parents=True, exist_ok=True)
    actual = _download(url, final, opener or urllib.request.urlopen, timeout_s, expected)
    if expected is None:
        write_atomically(digest_file, lambda path: path.write_text(f"{actual}  {name}\n"))
    return final


def _file_name(url: str) -> str:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    if name in ("", ".", ".."):
        raise DataValidationError(f"parameter url: {url!r} does not end in a file name")
    return name


def _normalise_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    digest = sha256.strip().lower()
    if not _SHA256_PATTERN.match(digest):
        raise DataValidationError(
            f"parameter sha256: expected 64 hexadecimal characters, got {sha256!r}"
        )
    return digest


def _verify_cached(final: Path, digest_file: Path, expected: str | None) -> Path:
    """Checks a file already on disk against `expected`, else against the recorded digest."""
    actual = _hash_file(final)
    if expected is not None:
        if actual != expected:
            raise DataValidationError(
                f"{final}: sha256 mismatch: expected {expected}, actual {actual}; the cached "
                "file is damaged or another version: delete it to download it again"
            )
        return final
    recorded = _read_recorded_digest(digest_file)
    if recorded is None:
        # A file put there by hand has no record yet; this run is its first use.
        write_atomically(digest_file, lambda path: path.write_text(f"{actual}  {final.name}\n"))
    elif actual != recorded:
        raise DataValidationError(
            f"{final}: sha256 mismatch: expected {recorded} (recorded in {digest_file.name} at "
            f"the first download), actual {actual}; the file was changed or damaged since: "
            f"delete {final.name} and {digest_file.name} to download it again"
        )
    return final


def _read_recorded_digest(digest_file: Path) -> str | None:
    if not digest_file.exists():
        return None
    fields = digest_file.read_text(encoding="utf-8").split()
    if not fields or not _SHA256_PATTERN.match(fields[0].lower()):
        raise DataValidationError(
            f"{digest_file}: not a sha256 record (expected '<64 hex digits>  <file name>'); "
            "delete it to record the digest of the cached file again"
        )
    return fields[0].lower()


def _download(
    url: str, final: Path, opener: Callable[..., Any], timeout_s: float, expected: str | None
) -> str:
    """Streams `url` onto `final` via a temporary file; returns the sha256 of the content."""
    digests: list[str] = []

    def write(temporary: Path) -> None:
        hasher = hashlib.sha256()
        received = 0
        try:
            with opener(url, timeout=timeout_s) as response, temporary.open("wb") as output:
                announced = _content_length(response)
                while chunk := response.read(CHUNK_BYTES):
                    hasher.update(chunk)
                    _write_chunk(output, chunk, final)
                    received += len(chunk)
        except urllib.error.HTTPError as error:
            raise _network_error(url, final, f"HTTP {error.code} {error.reason}") from error
        except urllib.error.URLError as error:
            raise _network_error(url, final, str(error.reason)) from error
        except TimeoutError as error:
            raise _network_error(url, final, f"no answer within {timeout_s:g} s") from error
        except (OSError, http.client.HTTPException) as error:
            raise _network_error(url, final, f"{type(error).__name__}: {error}") from error
        # urllib returns a short body without complaint when the connection drops early.
        if announced is not None and received != announced:
            raise _network_error(
                url, final, f"incomplete: received {received} of {announced} bytes"
            )
        if received == 0:
            raise _network_error(url, final, "the server sent an empty file")
        actual = hasher.hexdigest()
        if expected is not None and actual != expected:
            raise DataValidationError(
                f"{final}: sha256 mismatch: expected {expected}, actual {actual}; the download "
                f"from {url} is damaged or another version, so it was deleted"
            )
        digests.append(actual)

    # A half-written temporary file never stays behind, also on KeyboardInterrupt.
    write_atomically(final, write)
    return digests[0]


def _write_chunk(output: Any, chunk: bytes, final: Path) -> None:
    # A full disk is a local problem; keep it out of the "download by hand" advice below.
    try:
        output.write(chunk)
    except OSError as error:
        raise DataValidationError(f"{final}: cannot write the download: {error}") from error


def _content_length(response: Any) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _network_error(url: str, final: Path, reason: str) -> DataValidationError:
    return DataValidationError(
        f"could not download {url}: {reason}; download {url} by hand and put it at {final}, "
        "or pass --source PATH to the file"
    )


def _hash_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()
