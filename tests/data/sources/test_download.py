"""`fetch_once`: one atomic, checksummed download, served here by a fake opener (no network)."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.data.catalog import get_entry
from pipelines.data.sources import load_source
from pipelines.data.sources.download import fetch_once
from pipelines.data.validate import validate_table
from pipelines.runtime.contract import DataValidationError

JENA_URL = (
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/jena_climate_2009_2016.csv.zip"
)
JENA_MEMBER = "jena_climate_2009_2016.csv"
JENA_HEADER = (
    '"Date Time","p (mbar)","T (degC)","Tpot (K)","Tdew (degC)","rh (%)","VPmax (mbar)",'
    '"VPact (mbar)","VPdef (mbar)","sh (g/kg)","H2OC (mmol/mol)","rho (g/m**3)","wv (m/s)",'
    '"max. wv (m/s)","wd (deg)"'
)
ROWS = 30
SENTINEL_ROW = 20
DUPLICATED_ROW = 10


def jena_csv() -> str:
    """30 ten-minute rows as the station writes them, with one -9999 and one repeated row."""
    lines = [JENA_HEADER]
    start = pd.Timestamp("2009-01-01 00:10:00")
    for row in range(ROWS):
        stamp = start + pd.Timedelta(minutes=10 * row)
        temperature = -8.02 + 0.05 * row
        wind = -9999.0 if row == SENTINEL_ROW else 1.0 + 0.1 * row
        values = [
            996.52 - 0.01 * row,
            temperature,
            273.15 + temperature - 7.75,
            temperature - 0.88,
            93.3 - 0.1 * row,
            3.33,
            3.11,
            0.22,
            1.94,
            3.12,
            1307.75 - 0.2 * row,
            wind,
            1.75 + 0.1 * row,
            152.3 + row,
        ]
        line = f"{stamp:%d.%m.%Y %H:%M:%S}," + ",".join(f"{value:.2f}" for value in values)
        lines.append(line)
        if row == DUPLICATED_ROW:
            lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def jena_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(JENA_MEMBER, jena_csv())
    return buffer.getvalue()


class FakeResponse:
    """What `urlopen` returns: a context manager with `read(n)` and headers."""

    def __init__(
        self, body: bytes, *, chunk: int, fail_after: int | None, content_length: int | None
    ) -> None:
        self._body = io.BytesIO(body)
        self._chunk = chunk
        self._fail_after = fail_after
        self.headers = {} if content_length is None else {"Content-Length": str(content_length)}

    def read(self, size: int = -1) -> bytes:
        if self._fail_after is not None and self._body.tell() >= self._fail_after:
            raise ConnectionResetError(104, "Connection reset by peer")
        return self._body.read(min(size, self._chunk) if size > 0 else self._chunk)

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._body.close()


class FakeOpener:
    """Serves one body (or raises) and counts calls, like `urllib.request.urlopen`."""

    def __init__(
        self,
        body: bytes = b"",
        *,
        error: BaseException | None = None,
        chunk: int = 4096,
        fail_after: int | None = None,
        content_length: int | None = None,
    ) -> None:
        self.body = body
        self.error = error
        self.chunk = chunk
        self.fail_after = fail_after
        self.content_length = content_length
        self.calls: list[tuple[str, float]] = []

    def __call__(self, url: str, timeout: float) -> FakeResponse:
        self.calls.append((url, timeout))
        if self.error is not None:
            raise self.error
        return FakeResponse(
            self.body,
            chunk=self.chunk,
            fail_after=self.fail_after,
            content_length=self.content_length,
        )


@pytest.fixture(scope="module")
def archive() -> bytes:
    return jena_zip()


def test_first_call_downloads_and_second_call_reuses_the_file(
    tmp_path: Path, archive: bytes
) -> None:
    raw = tmp_path / "data" / "raw"  # does not exist yet: created by the download
    opener = FakeOpener(archive, chunk=1000)

    first = fetch_once(JENA_URL, raw, opener=opener, timeout_s=5.0)
    second = fetch_once(JENA_URL, raw, opener=opener)

    assert first == second == raw / "jena_climate_2009_2016.csv.zip"
    assert first.read_bytes() == archive
    assert opener.calls == [(JENA_URL, 5.0)]
    assert sorted(path.name for path in raw.iterdir()) == [
        "jena_climate_2009_2016.csv.zip",
        "jena_climate_2009_2016.csv.zip.sha256",
    ]


def test_cached_file_is_not_downloaded_and_no_folder_is_created_for_it(tmp_path: Path) -> None:
    # A file put in place by hand is used as is; the opener must not even be called.
    (tmp_path / "jena_climate_2009_2016.csv.zip").write_bytes(b"by hand")
    opener = FakeOpener(error=AssertionError("must not download"))

    path = fetch_once(JENA_URL, tmp_path, opener=opener)

    assert path.read_bytes() == b"by hand"
    assert opener.calls == []
    recorded = (tmp_path / "jena_climate_2009_2016.csv.zip.sha256").read_text().split()[0]
    assert recorded == hashlib.sha256(b"by hand").hexdigest()


def test_matching_sha256_is_accepted_and_no_digest_file_is_written(
    tmp_path: Path, archive: bytes
) -> None:
    digest = hashlib.sha256(archive).hexdigest()
    opener = FakeOpener(archive)

    path = fetch_once(JENA_URL, tmp_path, sha256=digest.upper(), opener=opener)
    again = fetch_once(JENA_URL, tmp_path, sha256=digest, opener=opener)

    assert path == again
    assert path.read_bytes() == archive
    assert len(opener.calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["jena_climate_2009_2016.csv.zip"]


def test_sha256_mismatch_names_both_digests_and_deletes_the_download(
    tmp_path: Path, archive: bytes
) -> None:
    expected = "0" * 64
    actual = hashlib.sha256(archive).hexdigest()

    with pytest.raises(DataValidationError) as caught:
        fetch_once(JENA_URL, tmp_path, sha256=expected, opener=FakeOpener(archive))

    message = str(caught.value)
    assert "jena_climate_2009_2016.csv.zip" in message
    assert f"expected {expected}" in message
    assert f"actual {actual}" in message
    assert list(tmp_path.iterdir()) == []


def test_cached_file_that_differs_from_given_sha256_is_rejected_but_kept(tmp_path: Path) -> None:
    cached = tmp_path / "jena_climate_2009_2016.csv.zip"
    cached.write_bytes(b"another version")
    opener = FakeOpener(error=AssertionError("must not download"))

    with pytest.raises(DataValidationError, match=r"expected 1{64}, actual [0-9a-f]{64}"):
        fetch_once(JENA_URL, tmp_path, sha256="1" * 64, opener=opener)

    assert cached.read_bytes() == b"another version"  # the user's file is never deleted
    assert opener.calls == []


def test_first_download_digest_is_recorded_and_a_tampered_file_is_rejected(
    tmp_path: Path, archive: bytes
) -> None:
    opener = FakeOpener(archive)
    path = fetch_once(JENA_URL, tmp_path, opener=opener)
    digest_file = tmp_path / "jena_climate_2009_2016.csv.zip.sha256"
    recorded = hashlib.sha256(archive).hexdigest()
    assert digest_file.read_text() == f"{recorded}  jena_climate_2009_2016.csv.zip\n"

    path.write_bytes(archive[:-10] + b"tampered!!")
    with pytest.raises(DataValidationError) as caught:
        fetch_once(JENA_URL, tmp_path, opener=opener)

    message = str(caught.value)
    assert str(path) in message
    assert f"expected {recorded}" in message
    assert f"actual {hashlib.sha256(path.read_bytes()).hexdigest()}" in message
    assert len(opener.calls) == 1


def test_offline_error_names_url_reason_and_manual_alternative(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    opener = FakeOpener(error=urllib.error.URLError("no network"))

    with pytest.raises(DataValidationError) as caught:
        fetch_once(JENA_URL, raw, opener=opener)

    message = str(caught.value)
    assert JENA_URL in message
    assert "no network" in message
    assert f"by hand and put it at {raw / 'jena_climate_2009_2016.csv.zip'}" in message
    assert "--source" in message
    assert list(raw.iterdir()) == []  # neither the file nor a temporary file is left


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (urllib.error.HTTPError(JENA_URL, 404, "Not Found", None, None), "HTTP 404 Not Found"),
        (TimeoutError("timed out"), "no answer within 60 s"),
        (ConnectionRefusedError(111, "Connection refused"), "Connection refused"),
    ],
)
def test_http_timeout_and_socket_errors_become_one_clear_message(
    tmp_path: Path, error: BaseException, reason: str
) -> None:
    with pytest.raises(DataValidationError) as caught:
        fetch_once(JENA_URL, tmp_path, opener=FakeOpener(error=error))

    assert reason in str(caught.value)
    assert "--source PATH" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_stream_leaves_no_file_behind(tmp_path: Path, archive: bytes) -> None:
    opener = FakeOpener(archive, chunk=512, fail_after=1024)

    with pytest.raises(DataValidationError, match="Connection reset by peer"):
        fetch_once(JENA_URL, tmp_path, opener=opener)

    assert list(tmp_path.iterdir()) == []
    # A later call downloads again instead of trusting a partial file.
    path = fetch_once(JENA_URL, tmp_path, opener=FakeOpener(archive))
    assert path.read_bytes() == archive


def test_body_shorter_than_content_length_is_rejected(tmp_path: Path, archive: bytes) -> None:
    opener = FakeOpener(archive[:100], content_length=len(archive))

    with pytest.raises(DataValidationError, match=f"received 100 of {len(archive)} bytes"):
        fetch_once(JENA_URL, tmp_path, opener=opener)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["https://example.org/", "https://example.org"])
def test_url_without_file_name_is_a_parameter_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(DataValidationError, match="parameter url"):
        fetch_once(url, tmp_path, opener=FakeOpener(b"x"))


def test_malformed_sha256_is_a_parameter_error(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="parameter sha256"):
        fetch_once(JENA_URL, tmp_path, sha256="abc", opener=FakeOpener(b"x"))


def test_jena_catalog_entry_downloads_and_validates_end_to_end(
    tmp_path: Path, archive: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    opener = FakeOpener(archive)
    monkeypatch.setattr("pipelines.data.sources.download.urllib.request.urlopen", opener)
    entry = get_entry("jena-climate")

    table = load_source(entry, raw_directory=tmp_path)
    result = validate_table(table, entry.schema(), entry.policy())

    assert [url for url, _ in opener.calls] == [entry.source["url"]]
    assert table.origin == f"{tmp_path / 'jena_climate_2009_2016.csv.zip'}!{JENA_MEMBER}"
    frame = result.frame
    assert len(frame) == ROWS
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2009-01-01 00:10", tz="UTC")
    assert (frame["timestamp"].diff().iloc[1:] == pd.Timedelta(minutes=10)).all()
    assert result.report.frequency == "10min"
    assert result.report.sentinel_values == {"wv (m/s)": 1}
    assert result.report.duplicate_rows_dropped == 1
    wind = frame["wv (m/s)"].to_numpy()
    expected = (wind[SENTINEL_ROW - 1] + wind[SENTINEL_ROW + 1]) / 2
    assert wind[SENTINEL_ROW] == pytest.approx(expected)
    assert np.isfinite(frame[list(result.value_columns)].to_numpy()).all()

    # The second load reads the cached archive: no second download.
    load_source(entry, raw_directory=tmp_path)
    assert len(opener.calls) == 1
