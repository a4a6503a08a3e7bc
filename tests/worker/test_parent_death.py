"""A process linked to its parent dies when the parent is SIGKILLed: real processes, both links."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

REPO = str(Path(__file__).resolve().parents[2])

# The parent: starts the linked child, waits until it is linked, prints the child's
# processes, then dies at once, as a SIGKILLed `imgserve up` does.
PARENT = textwrap.dedent(
    """
    import os, subprocess, sys
    from worker import parent_death
    parent_death.KERNEL_LINK = sys.argv[1] == "kernel"
    child = subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1], str(os.getpid())],
                             stdout=subprocess.PIPE, text=True, **parent_death.child_options())
    print(child.stdout.readline().strip(), flush=True)
    os.kill(os.getpid(), 9)
    """
)
# The child: links itself to its parent and says its pid. Linked by its group, it
# also starts a process of that group (as a pool process), which must die with it.
CHILD = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from worker import parent_death
    parent_death.KERNEL_LINK = sys.argv[1] == "kernel"
    parent_death.die_with_parent(int(sys.argv[2]))
    pool = "" if parent_death.KERNEL_LINK else subprocess.Popen(["sleep", "60"]).pid
    print(os.getpid(), pool, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("link", ["kernel", "group"])
def test_a_linked_process_dies_within_seconds_of_its_parent(link: str) -> None:
    env = {**os.environ, "PYTHONPATH": REPO}
    done = subprocess.run(
        [sys.executable, "-c", PARENT, link, CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -9, done.stderr
    pids = [int(pid) for pid in done.stdout.split()]
    assert len(pids) == (1 if link == "kernel" else 2)
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=5)
    assert alive == []
