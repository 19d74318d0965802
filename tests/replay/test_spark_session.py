"""The Spark replay session's settings: a local master's JVM options and partitions, what a
cluster keeps, and that the caller's options win."""

from __future__ import annotations

import os
from typing import Any

import pytest

from guardrail.replay.spark import local_cores, session_settings


@pytest.mark.parametrize(
    ("master", "cores"),
    [
        ("local", 1),
        ("local[1]", 1),
        ("local[2]", 2),
        ("local[4, 3]", 4),
        ("local[*]", os.cpu_count()),
        ("spark://10.0.0.5:7077", None),
        ("yarn", None),
    ],
)
def test_local_cores_of_each_master(master: str, cores: int | None) -> None:
    assert local_cores(master) == cores


def test_a_local_master_gets_a_fixed_heap_and_parallel_gc_per_slot() -> None:
    settings = session_settings("local[2]")
    java = settings["spark.driver.defaultJavaOptions"].split()
    assert "-XX:+UseParallelGC" in java
    assert "-XX:ParallelGCThreads=2" in java
    assert "-Xms2g" in java and settings["spark.driver.memory"] == "2g"  # -Xms = -Xmx
    assert settings["spark.sql.shuffle.partitions"] == "4"
    assert settings["spark.ui.enabled"] == "false"
    assert settings["spark.driver.bindAddress"] == "127.0.0.1"


def _java(master: str, options: dict[str, Any]) -> list[str]:
    return session_settings(master, options)["spark.driver.defaultJavaOptions"].split()


def test_the_initial_heap_follows_the_driver_memory_given() -> None:
    assert "-Xms3g" in _java("local[1]", {"spark.driver.memory": "3g"})
    # Spark reads a bare number as MiB; Java would read bytes
    assert "-Xms2048m" in _java("local[1]", {"spark.driver.memory": 2048})


def test_options_override_every_default() -> None:
    settings = session_settings(
        "local[2]",
        {
            "spark.driver.defaultJavaOptions": "-XX:+UseG1GC",
            "spark.sql.shuffle.partitions": 16,
            "spark.sql.windowExec.buffer.in.memory.threshold": "4096",
        },
    )
    assert settings["spark.driver.defaultJavaOptions"] == "-XX:+UseG1GC"
    assert settings["spark.sql.shuffle.partitions"] == "16"
    assert settings["spark.sql.windowExec.buffer.in.memory.threshold"] == "4096"


def test_a_cluster_master_keeps_sparks_jvm_and_partition_defaults() -> None:
    settings = session_settings("spark://10.0.0.5:7077")
    assert "spark.driver.defaultJavaOptions" not in settings
    assert "spark.sql.shuffle.partitions" not in settings
    assert "spark.sql.windowExec.buffer.in.memory.threshold" not in settings
    assert settings["spark.sql.session.timeZone"] == "UTC"


def test_the_local_jvm_runs_with_the_options(spark: Any) -> None:
    """The JVM the session started was given the options (not only the configuration)."""
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert "-XX:+UseParallelGC" in arguments
    assert "-XX:ParallelGCThreads=2" in arguments
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"
