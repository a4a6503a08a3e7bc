"""What the Redis job store keeps and what its Lua scripts (``lua/*.lua``) take and give.

Layout (every key under the ``imgserve:`` prefix)::

    job:<id>          hash: the job (its fields are listed in lua/prelude.lua); expires
                      ttl seconds after the job was created
    jobs              sorted set of job ids by creation time (GET /jobs)
    jobs:<state>      sorted set of the ids of the jobs in that state, by expiry time:
                      stats() counts the members not yet expired, so a job leaves the
                      count the moment it expires, whether or not it was swept yet
    output:<path>     the id of the queued or running job that writes that output;
                      deleted when the job settles or is cancelled, expires with it
    input:<path>      sorted set of the queued and running jobs that read that input, by
                      expiry; a job leaves it when it settles or is cancelled
    owner:<name>:jobs    sorted set of the ids of that key's jobs by creation time
    owner:<name>:active  sorted set of that key's queued and running jobs, by expiry
    owner:<name>:rate    hash: that key's submission token bucket (lua/admit.lua)
    running           hash of every running image: "<job id>:<n>" -> "<started>", with
                      " <node> <pid> <until>" after it when it has a holder: the
                      reaper reads it, and the heartbeats, to find lost images
    workers           hash of the workers' heartbeats: node -> worker.liveness.Beat as
                      JSON; a node silent for long is dropped by the next heartbeat
    stats             hash of counters for /metrics (see worker.store.metrics)
    changed           pub/sub channel: "<job key> <version> <finished 0|1>" after a
                      change (see worker.store.redis_changes)

Each script is ``lua/prelude.lua`` followed by the script's own file, each opening
with a table of its KEYS and ARGV. They mirror the reference transitions of
``worker.jobs.Job`` and take every name they use (states, channel) as arguments.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from worker.image_errors import gave_up_message
from worker.jobs import ImageState, Job, JobState, Start
from worker.liveness import Holder
from worker.store.metrics import counter_increments
from worker.store.protocol import Admission, Move, Step, input_claims, output_claims
from worker.store.redis_changes import CHANNEL, QUIET_SECONDS

PREFIX = "imgserve:"
JOB_KEY = PREFIX + "job:"
JOBS_INDEX = PREFIX + "jobs"
JOBS_IN = {state: f"{PREFIX}jobs:{state}" for state in JobState}
OUTPUT_KEY = PREFIX + "output:"
INPUT_KEY = PREFIX + "input:"
OWNER_KEY = PREFIX + "owner:"
STATS = PREFIX + "stats"
RUNNING = PREFIX + "running"
WORKERS = PREFIX + "workers"

CONSTANTS = json.dumps(
    {
        "channel": CHANNEL,
        "quiet": QUIET_SECONDS,
        "job": {state.name: state.value for state in JobState},
        "image": {state.name: state.value for state in ImageState},
        "start": {decision.name: decision.value for decision in Start},
        "job_key": JOB_KEY,
        "by_state": {state.value: key for state, key in JOBS_IN.items()},
        "output_key": OUTPUT_KEY,
        "input_key": INPUT_KEY,
        "running": RUNNING,
        "workers": WORKERS,
    }
)
"""ARGV[1] of every script (see lua/prelude.lua)."""


def script_text(name: str) -> str:
    """Return the script lua/<name>.lua, after the prelude every script shares."""
    lua = resources.files("worker.store").joinpath("lua")
    prelude, body = (lua.joinpath(f"{part}.lua").read_text("utf-8") for part in ("prelude", name))
    return prelude + body


SCRIPTS = {name: script_text(name) for name in ("create", "step", "cancel", "redeliver")}
SCRIPTS["admit"] = resources.files("worker.store").joinpath("lua", "admit.lua").read_text("utf-8")


def owner_key(owner: str, what: str) -> str:
    """Return the key of an owner's jobs, active jobs or rate bucket (what says which)."""
    return f"{OWNER_KEY}{owner}:{what}"


def job_key(job_id: str) -> str:
    """Return the Redis key of a job."""
    return JOB_KEY + job_id


def job_hash(
    job: Job, *, next_index: int, expires_at: float, outputs: list[str], inputs: list[str]
) -> list[str | int | float]:
    """Return a new job's hash as create.lua takes it: fields and values in turn."""
    fields: dict[str, str | int | float] = {
        "spec": json.dumps(job.spec()),
        "state": job.state,
        "total": job.total,
        "next_index": next_index,
        "version": 0,
        "changed_at": job.created_at,
        "started_at": "",
        "finished_at": "",
        "expires_at": expires_at,
        "outputs": json.dumps(outputs),
        "inputs": json.dumps(inputs),
    }
    if job.owner is not None:
        fields["active_key"] = owner_key(job.owner, "active")
    return [item for field in fields.items() for item in field]


def create_call(
    job: Job, first: int, ttl: int, now: float, admission: Admission
) -> tuple[list[str], list[Any]]:
    """Return the keys and arguments of create.lua for a new job whose first window is first."""
    claims = [OUTPUT_KEY + key for key, _, _ in output_claims(job)]
    inputs = [INPUT_KEY + path for path in input_claims(job)]
    expires_at = job.created_at + ttl
    fields = job_hash(job, next_index=first, expires_at=expires_at, outputs=claims, inputs=inputs)
    owner = job.owner or ""
    keys = [job_key(job.id), JOBS_INDEX, owner_key(owner, "jobs"), owner_key(owner, "active")]
    args = [CONSTANTS, job.created_at, expires_at, math.ceil(expires_at * 1000), now, ttl,
            len(claims), owner, admission.max_active or 0, int(admission.inputs_shared),
            *fields]  # fmt: skip
    return [*keys, *claims, *inputs], args


def move_json(move: Move, stale_after: float, time_limit: float) -> str:
    """Return a move as step.lua takes it: a JSON object of only what it asks for."""
    asked: dict[str, Any] = {}
    if move.finish is not None:
        asked["finish"] = move.finish.index
        asked["counters"] = counter_increments(move.finish.error, move.finish.timings)
        if move.finish.error:
            asked["error"] = move.finish.error
    if move.start is not None:
        asked["start"] = move.start
        asked["stale_after"], asked["time_limit"] = stale_after, time_limit
        if move.holder is not None:
            holder = move.holder
            asked["holder"] = {"node": holder.node, "pid": holder.pid, "until": holder.until}
        asked["max_attempts"] = move.max_attempts
        asked["gave_up"] = gave_up_message(move.max_attempts)
    if move.claim > 0:
        asked["claim"], asked["window"] = move.claim, move.window
        if move.claim_key is not None:
            asked["claim_key"] = move.claim_key
    if move.spec:
        asked["spec"] = True
    return json.dumps(asked)


def step_from_reply(reply: list[Any]) -> Step:
    """Return what step.lua answered as a Step."""
    started, first, taken, spec, attempt = reply
    return Step(
        started=Start(started.decode()) if started else None,
        claimed=range(int(first), int(first) + int(taken)),
        spec=Job.from_spec(json.loads(spec)) if spec else None,
        attempt=int(attempt),
    )


def job_from_hash(raw: dict[bytes, bytes]) -> Job | None:
    """Rebuild a job from its hash (None for a missing or expired job)."""
    if not raw or b"spec" not in raw:
        return None
    fields: dict[str, str] = {k.decode(): v.decode() for k, v in raw.items()}
    job = Job.from_spec(json.loads(fields["spec"]))
    job.state = JobState(fields["state"])
    job.started_at = float(fields["started_at"]) if fields.get("started_at") else None
    job.finished_at = float(fields["finished_at"]) if fields.get("finished_at") else None
    job.changed_at = float(fields["changed_at"]) if fields.get("changed_at") else None
    for name in ("done", "failed", "cancelled", "running", "next_index", "version"):
        setattr(job, name, int(fields.get(name, 0)))
    for n, image in enumerate(job.images):
        image.state = ImageState(fields.get(f"i{n}:s", ImageState.QUEUED))
        image.attempts = int(fields.get(f"i{n}:a", 0))
        image.error = fields.get(f"i{n}:e")
        image.started = float(fields[f"i{n}:t"]) if f"i{n}:t" in fields else None
        if f"i{n}:w" in fields:
            image.holder = Holder(fields[f"i{n}:w"], int(fields[f"i{n}:p"]), int(fields[f"i{n}:u"]))
    for name, value in fields.items():
        if name[0] == "c" and name[1:].isdigit():  # c<key>: "<first> <count>"
            first, taken = map(int, value.split())
            job.claims[int(name[1:])] = range(first, first + taken)
    return job
