"""Usage-record ids: unique in a process and across the processes forked from it."""

from __future__ import annotations

import os

from modelway.store.records import new_usage_id


def test_ids_in_one_process_are_unique_and_share_a_prefix() -> None:
    ids = [new_usage_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert len({record_id[:16] for record_id in ids}) == 1
    assert all(len(record_id) == 32 for record_id in ids)


def test_a_forked_child_draws_a_prefix_of_its_own() -> None:
    parent = new_usage_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent, then out without cleanup
        try:
            os.write(write, new_usage_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    assert len(child) == 32 and child[:16] != parent[:16]
    assert new_usage_id()[:16] == parent[:16]  # the parent keeps its own
