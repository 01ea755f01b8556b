"""A scrape with ``--workers N`` reads every worker's metric files, even while a
replacement worker is creating its own (``metric_files.WorkerFiles``)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from modelway.observability.metric_files import WorkerFiles


def worker_files(directory: Path) -> None:
    """One worker's counter, written as prometheus-client writes it, and a second
    worker's counter file just created (empty: not sized, no header yet)."""
    values = MmapedDict(str(directory / "counter_101.db"))
    name = "modelway_requests_total"
    key = mmap_key(name, name, ["dialect"], ["openai"], "Calls")
    values.write_value(key, 20.0, 0.0)
    values.close()
    (directory / "counter_102.db").touch()


def test_a_file_being_created_is_left_out_and_the_others_are_summed(tmp_path: Path) -> None:
    worker_files(tmp_path)
    registry = CollectorRegistry()
    WorkerFiles(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    text = generate_latest(registry).decode()
    assert 'modelway_requests_total{dialect="openai"} 20.0' in text


def test_prometheus_clients_own_collector_fails_on_it(tmp_path: Path) -> None:
    # What a scrape that raced a replacement worker's start answered before: a 500.
    worker_files(tmp_path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    with pytest.raises(struct.error):
        generate_latest(registry)
