"""Validation cases through the prepare CLI: the message names column and row, exit status 2,
and nothing is written to --output. Repairs are checked by their counts and values."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.cli.prepare import main
from pipelines.data.validate import validate_table
from pipelines.runtime.contract import CleaningPolicy, DataValidationError, SourceTable, TableSchema
from tests.conftest import daily_csv, daily_prepare_arguments

WINDOW_ARGS = ["--input-width", "3", "--horizon", "2"]


def replace_line(text: str, line_number: int, new_line: str) -> str:
    lines = text.splitlines()
    lines[line_number - 1] = new_line
    return "\n".join(lines) + "\n"


def run_prepare(source: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, str, str, Path]:
    output = tmp_path / "prepared"
    code = main(
        [
            *daily_prepare_arguments(source),
            *WINDOW_ARGS,
            "--output",
            str(output),
            "--summary-json",
            str(tmp_path / "summary.json"),
            *extra,
        ]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err, output


def assert_rejected(code: int, err: str, output: Path, tmp_path: Path, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert not output.exists()
    assert not (tmp_path / "summary.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".prepared")]


def summary_of(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "summary.json").read_text())


# ---------------------------------------------------------------------------- files


def test_missing_file(tmp_path, capsys):
    code, _, err, output = run_prepare(tmp_path / "nope.csv", tmp_path, capsys)
    assert_rejected(code, err, output, tmp_path, "nope.csv", "file not found")


def test_empty_file(write_csv, tmp_path, capsys):
    code, _, err, output = run_prepare(write_csv(""), tmp_path, capsys)
    assert_rejected(code, err, output, tmp_path, "data.csv", "empty")


def test_header_only(write_csv, tmp_path, capsys):
    code, _, err, output = run_prepare(write_csv("date,temp,humidity\n"), tmp_path, capsys)
    assert_rejected(code, err, output, tmp_path, "data.csv", "header but no data rows")


# ---------------------------------------------------------------------------- columns


def test_misspelled_timestamp_column_suggests_closest(write_csv, tmp_path, capsys):
    source = write_csv(daily_csv().replace("date,", "Date Time,", 1))
    code, _, err, output = run_prepare(source, tmp_path, capsys)
    assert_rejected(
        code,
        err,
        output,
        tmp_path,
        "timestamp column 'date' not found",
        "did you mean 'Date Time'?",
    )


def test_misspelled_target_suggests_closest(write_csv, tmp_path, capsys):
    source = write_csv(daily_csv())
    code, _, err, output = run_prepare(source, tmp_path, capsys, "--targets", "tmp")
    assert_rejected(
        code, err, output, tmp_path, "target column 'tmp' not found", "did you mean 'temp'?"
    )


def test_source_without_column_options_is_explained(write_csv, tmp_path, capsys):
    code = main(
        [
            "--dataset",
            "none",
            "--source",
            str(write_csv(daily_csv())),
            "--output",
            str(tmp_path / "prepared"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "data.timestamp_column and data.targets" in err


# ---------------------------------------------------------------------------- timestamps


def test_unparseable_timestamp_names_line_and_value(write_csv, tmp_path, capsys):
    source = write_csv(replace_line(daily_csv(), 5, "2024-13-45,11.0,53"))
    code, _, err, output = run_prepare(source, tmp_path, capsys)
    assert_rejected(
        code,
        err,
        output,
        tmp_path,
        "column 'date'",
        "unparseable timestamp",
        "line 5",
        "'2024-13-45'",
    )


def test_missing_timestamp_names_line(write_csv, tmp_path, capsys):
    source = write_csv(replace_line(daily_csv(), 7, ",11.0,53"))
    code, _, err, output = run_prepare(source, tmp_path, capsys)
    assert_rejected(code, err, output, tmp_path, "column 'date'", "missing timestamp", "line 7")


def test_mixed_time_zones(write_csv, tmp_path, capsys):
    text = daily_csv().replace("2024-01-03,", "2024-01-03T00:00:00+02:00,")
    code, _, err, output = run_prepare(write_csv(text), tmp_path, capsys)
    assert_rejected(
        code, err, output, tmp_path, "column 'date'", "mixed time zones", "line 4", "lines 2, 3, 5"
    )


def test_consistent_offsets_are_converted_to_utc(write_csv, tmp_path, capsys):
    lines = ["date,temp"] + [f"2024-03-{day:02d}T01:00:00+01:00,{day}.0" for day in range(1, 29)]
    code, _, _, output = run_prepare(write_csv("\n".join(lines) + "\n"), tmp_path, capsys)
    assert code == 0
    frame = pd.read_parquet(output / "frame.parquet")
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-03-01T00:00:00Z")


def test_irregular_frequency_names_offending_row(write_csv, tmp_path, capsys):
    source = write_csv(replace_line(daily_csv(), 10, "2024-01-08 12:00:00,11.0,53"))
    code, _, err, output = run_prepare(source, tmp_path, capsys, "--frequency", "D")
    assert_rejected(
        code, err, output, tmp_path, "irregular frequency", "2024-01-08 12:00:00", "line 10"
    )


# ---------------------------------------------------------------------------- rows


def test_identical_duplicates_dropped_and_counted(write_csv, tmp_path, capsys):
    lines = daily_csv().splitlines()
    text = "\n".join([*lines[:6], lines[5], *lines[6:]]) + "\n"
    code, _, _, _ = run_prepare(write_csv(text), tmp_path, capsys)
    assert code == 0
    summary = summary_of(tmp_path)
    assert summary["validation"]["duplicate_rows_dropped"] == 1
    assert summary["rows"] == 30


def test_conflicting_duplicates_rejected_by_default(write_csv, tmp_path, capsys):
    lines = daily_csv().splitlines()
    text = "\n".join([*lines[:6], "2024-01-05,99.0,54", *lines[6:]]) + "\n"
    code, _, err, output = run_prepare(write_csv(text), tmp_path, capsys)
    assert_rejected(
        code,
        err,
        output,
        tmp_path,
        "column 'temp'",
        "conflicting values",
        "2024-01-05",
        "lines 6, 7",
        "first, last or mean",
    )


@pytest.mark.parametrize(("policy", "expected"), [("first", 12.0), ("last", 99.0), ("mean", 55.5)])
def test_conflicting_duplicates_resolved_by_policy(write_csv, tmp_path, capsys, policy, expected):
    lines = daily_csv().splitlines()
    text = "\n".join([*lines[:6], "2024-01-05,99.0,54", *lines[6:]]) + "\n"
    code, _, _, output = run_prepare(write_csv(text), tmp_path, capsys, "--duplicates", policy)
    assert code == 0
    frame = pd.read_parquet(output / "frame.parquet")
    assert frame.loc[frame["timestamp"] == "2024-01-05", "temp"].item() == expected
    assert summary_of(tmp_path)["validation"]["conflicting_duplicates_resolved"] == 1


def test_unsorted_rows_sorted_and_counted(write_csv, tmp_path, capsys):
    lines = daily_csv().splitlines()
    text = "\n".join([lines[0], *lines[1:4], lines[5], lines[4], *lines[6:]]) + "\n"
    code, _, _, output = run_prepare(write_csv(text), tmp_path, capsys)
    assert code == 0
    frame = pd.read_parquet(output / "frame.parquet")
    assert frame["timestamp"].is_monotonic_increasing
    assert summary_of(tmp_path)["validation"]["rows_unsorted"] == 1


# ---------------------------------------------------------------------------- values


def test_non_numeric_value_names_column_line_and_value(write_csv, tmp_path, capsys):
    source = write_csv(replace_line(daily_csv(), 5, "2024-01-04,abc,53"))
    code, _, err, output = run_prepare(source, tmp_path, capsys)
    assert_rejected(code, err, output, tmp_path, "column 'temp'", "non-numeric", "line 5", "'abc'")


def test_infinite_value_names_column_and_line(write_csv, tmp_path, capsys):
    source = write_csv(replace_line(daily_csv(), 8, "2024-01-07,inf,56"))
    code, _, err, output = run_prepare(source, tmp_path, capsys)
    assert_rejected(code, err, output, tmp_path, "column 'temp'", "infinite value", "line 8")


def test_all_missing_column(write_csv, tmp_path, capsys):
    lines = daily_csv().splitlines()
    text = "\n".join([lines[0]] + [line.rsplit(",", 1)[0] + "," for line in lines[1:]]) + "\n"
    code, _, err, output = run_prepare(write_csv(text), tmp_path, capsys)
    assert_rejected(
        code, err, output, tmp_path, "column 'humidity'", "every value is missing", "lines 2, 3"
    )


def test_column_of_only_sentinels_is_all_missing(write_csv, tmp_path, capsys):
    lines = daily_csv().splitlines()
    text = "\n".join([lines[0]] + [line.rsplit(",", 1)[0] + ",-9999" for line in lines[1:]]) + "\n"
    code, _, err, output = run_prepare(write_csv(text), tmp_path, capsys, "--sentinels", "-9999")
    assert_rejected(
        code,
        err,
        output,
        tmp_path,
        "column 'humidity'",
        "every value is missing after sentinel values were removed",
    )


def test_sentinels_become_missing_and_short_runs_are_interpolated(write_csv, tmp_path, capsys):
    source = write_csv(replace_line(daily_csv(), 6, "2024-01-05,-9999,54"))
    code, _, _, output = run_prepare(
        source, tmp_path, capsys, "--sentinels", "-9999", "--max-gap", "2"
    )
    assert code == 0
    frame = pd.read_parquet(output / "frame.parquet")
    # Neighbours are 11.5 (Jan 4) and 12.5 (Jan 6): time interpolation gives 12.0.
    assert frame.loc[frame["timestamp"] == "2024-01-05", "temp"].item() == pytest.approx(12.0)
    validation = summary_of(tmp_path)["validation"]
    assert validation["sentinel_values"] == {"temp": 1}
    assert validation["values_filled"] == {"temp": 1}


def test_short_gap_filled_in_time_and_long_gap_splits(write_csv, tmp_path, capsys):
    lines = daily_csv(rows=40).splitlines()
    # Drop 2 days (a short gap) and 5 days (a long one) with max_gap 3.
    kept = [lines[0], *lines[1:11], *lines[13:25], *lines[30:]]
    code, _, _, output = run_prepare(
        write_csv("\n".join(kept) + "\n"), tmp_path, capsys, "--max-gap", "3"
    )
    assert code == 0
    frame = pd.read_parquet(output / "frame.parquet")
    filled = frame.loc[
        frame["timestamp"].isin(pd.to_datetime(["2024-01-11", "2024-01-12"], utc=True))
    ]
    np.testing.assert_allclose(filled["temp"], [15.0, 15.5])
    assert frame["segment"].nunique() == 2
    validation = summary_of(tmp_path)["validation"]
    assert validation["missing_timestamps"] == 7
    assert validation["gaps"]["filled"] == 1 and validation["gaps"]["split"] == 1
    assert validation["gaps"]["first"][1]["steps"] == 5
    assert validation["gaps"]["first"][1]["missing_timestamps"] == 5
    assert validation["rows_dropped"] == {"long_gap_missing_timestamps": 5}


def test_forward_fill_policy_repeats_last_value(write_csv, tmp_path, capsys):
    lines = daily_csv().splitlines()
    kept = [lines[0], *lines[1:11], *lines[12:]]
    code, _, _, output = run_prepare(
        write_csv("\n".join(kept) + "\n"),
        tmp_path,
        capsys,
        "--max-gap",
        "1",
        "--fill-method",
        "ffill",
    )
    assert code == 0
    frame = pd.read_parquet(output / "frame.parquet")
    assert frame.loc[frame["timestamp"] == "2024-01-11", "temp"].item() == 14.5


# ---------------------------------------------------------------------------- window sizes


def test_series_too_short_is_dropped_and_listed(write_csv, tmp_path, capsys):
    long_rows = daily_csv(rows=30).splitlines()[1:]
    short_rows = daily_csv(rows=4).splitlines()[1:]
    text = "date,temp,humidity,ticker\n" + "".join(
        [f"{row},LONG\n" for row in long_rows] + [f"{row},SHORT\n" for row in short_rows]
    )
    code, _, _, _ = run_prepare(write_csv(text), tmp_path, capsys, "--series-column", "ticker")
    assert code == 0
    validation = summary_of(tmp_path)["validation"]
    assert [s["series_id"] for s in validation["dropped_series"]] == ["SHORT"]
    assert summary_of(tmp_path)["series"] == 1


def test_too_few_rows_for_any_window(write_csv, tmp_path, capsys):
    code, _, err, output = run_prepare(write_csv(daily_csv(rows=4)), tmp_path, capsys)
    assert_rejected(
        code,
        err,
        output,
        tmp_path,
        "too few rows",
        "needs 5 consecutive rows",
        "longest clean stretch has 4",
    )


@pytest.mark.parametrize(
    ("option", "value", "parameter"),
    [
        ("--input-width", "0", "input_width"),
        ("--horizon", "-3", "horizon"),
        ("--stride", "0", "stride"),
    ],
)
def test_non_positive_widths_name_the_parameter(
    write_csv, tmp_path, capsys, option, value, parameter
):
    code, _, err, output = run_prepare(write_csv(daily_csv()), tmp_path, capsys, option, value)
    assert_rejected(
        code,
        err,
        output,
        tmp_path,
        f"config key 'data.{parameter}' (from parameter '{parameter}')",
        f"expected an integer >= 1{', or none' if parameter != 'stride' else ''}, got {value}",
    )


# ---------------------------------------------------------------------------- encodings


def test_non_utf8_header_is_decoded_and_reported(write_csv, tmp_path, capsys):
    text = daily_csv().replace("temp", "T (°C)", 1)
    code = main(
        [
            "--dataset",
            "none",
            "--source",
            str(write_csv(text.encode("cp1252"))),
            "--timestamp-column",
            "date",
            "--targets",
            "T (°C)",
            *WINDOW_ARGS,
            "--output",
            str(tmp_path / "prepared"),
            "--summary-json",
            str(tmp_path / "summary.json"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    summary = summary_of(tmp_path)
    assert summary["targets"] == ["T (°C)"]
    assert any("cp1252" in note for note in summary["source_notes"])


def test_crlf_and_gzip_give_the_same_frame(write_csv, tmp_path, capsys):
    plain = daily_csv()
    code, _, _, output = run_prepare(write_csv(plain, "plain.csv"), tmp_path, capsys)
    assert code == 0
    expected = pd.read_parquet(output / "frame.parquet")
    # Gzip is recognised by its bytes, whatever the file is called.
    crlf_gzip = gzip.compress(daily_csv(newline="\r\n").encode())
    code, _, _, output = run_prepare(write_csv(crlf_gzip, "crlf.csv"), tmp_path, capsys)
    assert code == 0
    # The ad-hoc series id is the file's name; everything else must match.
    pd.testing.assert_frame_equal(
        pd.read_parquet(output / "frame.parquet").drop(columns="series_id"),
        expected.drop(columns="series_id"),
    )


# ---------------------------------------------------------------------------- library level


def test_validate_table_keeps_source_row_numbers_for_parquet_like_tables():
    frame = pd.DataFrame({"when": ["2024-01-01", "2024-01-02", "bad"], "value": [1.0, 2.0, 3.0]})
    table = SourceTable(frame=frame, origin="memory")
    with pytest.raises(DataValidationError, match=r"memory: column 'when': .* row 2: 'bad'"):
        validate_table(
            table, TableSchema(timestamp_column="when", targets=("value",)), CleaningPolicy()
        )


def test_frequency_is_inferred_as_business_days_for_weekday_data():
    dates = pd.bdate_range("2024-01-01", periods=20)
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "price": np.arange(20.0)})
    result = validate_table(
        SourceTable(frame=frame, origin="memory"),
        TableSchema(timestamp_column="date", targets=("price",)),
        CleaningPolicy(),
    )
    assert result.report.frequency == "B"
    assert result.report.missing_timestamps == 0


def test_text_column_not_asked_for_is_ignored_and_listed(write_csv):
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=5).strftime("%Y-%m-%d"),
            "value": np.arange(5.0),
            "label": list("abcde"),
        }
    )
    result = validate_table(
        SourceTable(frame=frame, origin="memory"),
        TableSchema(timestamp_column="date", targets=("value",)),
        CleaningPolicy(),
    )
    assert result.value_columns == ("value",)
    assert result.report.ignored_columns == ["label"]


def test_frequency_finer_than_the_data_is_rejected(write_csv, tmp_path, capsys):
    code, _, err, output = run_prepare(
        write_csv(daily_csv()), tmp_path, capsys, "--frequency", "6h"
    )
    assert_rejected(
        code,
        err,
        output,
        tmp_path,
        "column 'date'",
        "usual step between rows is 4",
        "finer than the data",
    )


def test_target_cannot_be_the_timestamp_column(write_csv, tmp_path, capsys):
    code, _, err, output = run_prepare(
        write_csv(daily_csv()), tmp_path, capsys, "--targets", "date"
    )
    assert_rejected(code, err, output, tmp_path, "column 'date' is the timestamp or series column")


def test_local_time_repeated_by_a_clock_change_names_the_row():
    # 2023-10-29 02:30 happens twice in Berlin (clocks go back at 03:00).
    times = ["2023-10-29 01:30", "2023-10-29 02:30", "2023-10-29 03:30"]
    frame = pd.DataFrame({"when": times, "value": [1.0, 2.0, 3.0]})
    schema = TableSchema(timestamp_column="when", targets=("value",), timezone="Europe/Berlin")
    with pytest.raises(
        DataValidationError,
        match=r"column 'when': local time 2023-10-29 02:30:00 "
        r"does not exist or is ambiguous .* row 1",
    ):
        validate_table(SourceTable(frame=frame, origin="memory"), schema, CleaningPolicy())


def test_interpolation_never_reaches_from_training_into_a_later_part(write_csv, tmp_path, capsys):
    lines = daily_csv(rows=30).splitlines()
    # Days 14-16 missing; with split 0.5,0.25,0.25 day 14 is the last training row and day 15
    # the first validation row.
    kept = [lines[0], *lines[1:15], *lines[18:]]
    code, _, _, output = run_prepare(
        write_csv("\n".join(kept) + "\n"),
        tmp_path,
        capsys,
        "--max-gap",
        "3",
        "--split",
        "0.5,0.25,0.25",
    )
    assert code == 0
    frame = pd.read_parquet(output / "frame.parquet").set_index("timestamp")
    day = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(30), unit="D")
    assert frame.loc[day[14], "part"] == "train" and frame.loc[day[15], "part"] == "validation"
    # The training row repeats day 13 (16.5) instead of leaning on day 17 (18.5)...
    assert frame.loc[day[14], "temp"] == 16.5
    # ...while validation rows are interpolated between days 13 and 17 as usual.
    np.testing.assert_allclose(frame.loc[day[15:17], "temp"], [17.5, 18.0])
    assert summary_of(tmp_path)["validation"]["fills_before_part_start"] == 2
