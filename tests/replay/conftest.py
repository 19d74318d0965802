"""Fixtures of the replay-engine tests: one local Spark session for the whole test session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local[2] Spark session (no UI, loopback only). Without Java or Spark this fails in CI
    (CI=true) and skips elsewhere."""
    problem = None
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        problem = "java is not installed (.ci/run installs openjdk-17-jre-headless)"
    session = None
    if problem is None:
        try:
            from guardrail.replay.spark import spark_session

            session = spark_session("local[2]", {"spark.sql.shuffle.partitions": "4"})
        except Exception as error:  # any start-up failure: no JVM, no pyspark, no port
            problem = f"cannot start Spark: {type(error).__name__}: {error}"
    if problem is not None or session is None:
        if os.environ.get("CI"):
            pytest.fail(problem or "cannot start Spark")
        pytest.skip(problem or "cannot start Spark")
    yield session
    session.stop()
