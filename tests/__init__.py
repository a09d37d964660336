"""Tilecast's tests."""

import pytest

# Imported by conftest.py before pytest loads it as a plugin: its asserts are rewritten all the same.
pytest.register_assert_rewrite("tests.clickhouse_helpers")
