"""The shared validation mechanism: what is a valid measurement, and how drops are reported."""

from __future__ import annotations

import logging
import math

import pytest

from p2p_telemetry.bounds import NameSet, Rejections, clean_name, count_problem, ratio_problem, seconds_problem


@pytest.mark.parametrize("value, problem", [
    (0, None), (2**63 - 1, None), (-1, "range"), (2**63, "range"), (1.0, "type"), (True, "type"),
    (None, "type"), ("1", "type"),
])
def test_count_problem(value, problem):
    assert count_problem(value) == problem


@pytest.mark.parametrize("value, problem", [
    (0, None), (0.5, None), (3, None), (-0.1, "range"), (math.nan, "range"), (math.inf, "range"),
    (False, "type"), ("0.1", "type"),
])
def test_seconds_problem(value, problem):
    assert seconds_problem(value) == problem


@pytest.mark.parametrize("value, problem", [(0, None), (1, None), (0.3, None), (1.01, "range"),
                                            (math.nan, "range"), (None, "type")])
def test_ratio_problem(value, problem):
    assert ratio_problem(value) == problem


@pytest.mark.parametrize("value, ok", [("task", True), ("/ipfs/id/1.0.0", True), ("", False), ("a" * 129, False),
                                       ("\udc80", False), ("tab\there", False), (b"task", False), (7, False)])
def test_clean_name(value, ok):
    assert (clean_name(value) == value) is ok


def test_rejections_log_once_per_reason(caplog):
    rejections = Rejections()
    with caplog.at_level(logging.WARNING, logger="p2p_telemetry"):
        for _ in range(100):
            rejections.reject("range", "bytes_sent")
        rejections.reject("type", "bytes_sent")
    assert rejections.counts()["range"] == 100 and rejections.counts()["type"] == 1
    assert len(caplog.records) == 2


def test_name_set_admits_up_to_its_limit():
    names = NameSet("events", admit_limit=2)
    assert [names.admit(x) for x in ("a", "b", "c", "a", None)] == ["a", "b", "other", "a", "other"]
    assert list(names) == ["a", "b"]
