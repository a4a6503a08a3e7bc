"""One writer per output: a job is refused while a queued or running job writes one of its outputs."""

from __future__ import annotations

import time

import fakeredis
import pytest

from tests.support import OpenStore, finish_image, make_job, start_image
from worker.jobs import ImageRecord
from worker.store import JobStore, OutputsBusy
from worker.store.redis_store import RedisJobStore


def test_a_job_is_refused_while_a_queued_job_writes_one_of_its_outputs(store: JobStore) -> None:
    first = make_job(images=2)
    store.create(first, window=1)
    second = make_job(images=3, folder="other")
    second.images[2] = ImageRecord("in/x.jpg", "./out//1.jpg", ["./out//1.jpg"])  # out/1.jpg
    with pytest.raises(OutputsBusy) as refused:
        store.create(second, window=1)
    busy = refused.value
    assert (busy.index, busy.output, busy.other_job) == (2, "./out//1.jpg", first.id)
    assert str(busy) == (
        f"image 2 would write './out//1.jpg', which job {first.id} (queued or running) writes too"
    )
    assert store.get(second.id) is None  # nothing of it was stored
    assert [job.id for job in store.list_jobs(limit=10, offset=0)] == [first.id]
    assert store.stats().jobs["queued"] == 1
    assert store.create(make_job(images=2, folder="other"), window=1) == [0]  # nor taken


def test_a_running_job_keeps_its_outputs_and_a_settled_one_lets_go(store: JobStore) -> None:
    first = make_job(images=2)
    store.create(first, window=2)
    start_image(store, first.id, 0)
    finish_image(store, first.id, 0)
    start_image(store, first.id, 1)
    with pytest.raises(OutputsBusy) as refused:
        store.create(make_job(images=2), window=1)
    assert (refused.value.index, refused.value.other_job) == (0, first.id)
    finish_image(store, first.id, 1, error="broken")
    settled = store.get(first.id)
    assert settled is not None and settled.state == "partially_failed"
    assert store.create(make_job(images=2), window=2) == [0, 1]


def test_a_cancelled_job_lets_go_of_its_outputs_even_while_an_image_ends(store: JobStore) -> None:
    first = make_job(images=2)
    store.create(first, window=2)
    start_image(store, first.id, 0)
    store.cancel(first.id)
    second = make_job(images=2)
    assert store.create(second, window=2) == [0, 1]
    finish_image(store, first.id, 0)  # the cancelled job's last image ends: second keeps them
    with pytest.raises(OutputsBusy) as refused:
        store.create(make_job(images=1), window=1)
    assert refused.value.other_job == second.id


def test_an_expired_job_lets_go_of_its_outputs(open_store: OpenStore) -> None:
    store = open_store(ttl=1)
    store.create(make_job(images=1), window=1)
    time.sleep(1.1)
    assert store.create(make_job(images=1), window=1) == [0]


def test_redis_keeps_a_key_an_output_while_its_job_runs_and_expires_it_with_the_job() -> None:
    client = fakeredis.FakeRedis()
    store = RedisJobStore(client, ttl=3600)
    job = make_job(images=2)
    store.create(job, window=2)
    keys = [b"imgserve:output:out/0.jpg", b"imgserve:output:out/1.jpg"]
    assert sorted(client.keys("imgserve:output:*")) == keys
    assert [client.get(key) for key in keys] == [job.id.encode()] * 2
    job_ttl = client.pttl(f"imgserve:job:{job.id}")
    assert 3_599_000 < job_ttl <= 3_600_000
    assert all(abs(client.pttl(key) - job_ttl) < 1000 for key in keys)
    for n in range(2):
        start_image(store, job.id, n)
        finish_image(store, job.id, n)
    assert client.keys("imgserve:output:*") == []  # deleted as the job settled
