"""Shared fixtures. Each fixture module under tests/fixtures/ is owned by one area and
registered here as a plugin so every test directory can use it."""

pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.mariadb",
    "tests.fixtures.sqlite_writer",
    "tests.fixtures.moto_server",
    "tests.fixtures.artifacts",
    "tests.fixtures.faults",
    "tests.fixtures.replicas",
    "tests.fixtures.cloud_fakes",
]
