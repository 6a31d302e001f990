"""An archive build's claim names its process: a build whose process died is taken over at once."""

from __future__ import annotations

import subprocess
import sys

from meeting_server.archive import service
from meeting_server.documents.jobs import holder


def test_a_claim_of_a_process_that_ended_is_dead_and_a_running_one_is_not():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        claim = holder(7, 1, pid=p.pid)
        assert not service._holder_dead(claim)
    finally:
        p.kill()
        p.wait()
    assert service._holder_dead(claim)
    assert not service._holder_dead(service.holder_name(7))  # this very process
    assert not service._holder_dead(None) and not service._holder_dead("0123abcd" * 4)  # an old-style job id
