"""The run-identity rules: version format, the environment variable, pins for a pipeline."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from kedro.io.core import generate_timestamp

from alignment_stages.run_identity import (
    RUN_VERSION_VARIABLE,
    RunVersionError,
    parse_run_version,
    pinned_load_versions,
    run_version_from_env,
    version_from_datetime,
)


def test_kedro_generated_versions_are_accepted():
    version = generate_timestamp()
    assert parse_run_version(version) == version


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-23T23:30:46.143Z",  # ISO colons, not Kedro's dots
        "2026-11-23T23.30.46Z",  # no milliseconds
        "2026-11-23T23.30.46.143",  # no Z
        "2026-13-01T00.00.00.000Z",  # no month 13
        "../2026-11-23T23.30.46.143Z",  # a path, not one folder name
        "latest",
    ],
)
def test_bad_versions_name_the_variable_and_the_format(value):
    with pytest.raises(RunVersionError) as caught:
        run_version_from_env({RUN_VERSION_VARIABLE: value})
    assert RUN_VERSION_VARIABLE in str(caught.value)
    assert "YYYY-MM-DDTHH.MM.SS.mmmZ" in str(caught.value)


@pytest.mark.parametrize("environ", [{}, {RUN_VERSION_VARIABLE: ""}, {RUN_VERSION_VARIABLE: " "}])
def test_unset_or_empty_means_no_pinned_version(environ):
    assert run_version_from_env(environ) is None


def test_set_variable_is_the_run_version():
    environ = {RUN_VERSION_VARIABLE: "2026-11-23T23.30.46.143Z"}
    assert run_version_from_env(environ) == "2026-11-23T23.30.46.143Z"


def test_version_from_an_aware_time_is_utc_in_kedro_format():
    moment = datetime(2026, 11, 24, 3, 4, 5, 678_999, tzinfo=timezone(timedelta(hours=2)))
    version = version_from_datetime(moment)
    assert version == "2026-11-24T01.04.05.678Z"
    assert parse_run_version(version) == version
    assert version_from_datetime(moment.astimezone(UTC)) == version  # same instant, same version


def test_version_from_a_naive_time_is_refused():
    with pytest.raises(RunVersionError, match="timezone-aware"):
        version_from_datetime(datetime(2026, 11, 24, 3, 4, 5))


def test_pins_cover_produced_datasets_and_explicit_versions_win():
    pins = pinned_load_versions(
        {"curated_pairs", "base_policy"},
        "2026-01-02T00.00.00.000Z",
        explicit={
            "base_policy": "2025-12-31T00.00.00.000Z",
            "raw_table": "2025-01-01T00.00.00.000Z",
        },
    )
    assert pins == {
        "curated_pairs": "2026-01-02T00.00.00.000Z",
        "base_policy": "2025-12-31T00.00.00.000Z",
        "raw_table": "2025-01-01T00.00.00.000Z",
    }
