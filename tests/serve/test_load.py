"""Load: 16 concurrent clients on loopback, no failed request.

GR00T_EXP_LOAD_SECONDS sets the duration (default 5 s here; docs/benchmarks.md records a 30 s run).
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
from gr00t_exp_client import PolicyClient

from gr00t_exp.serve.zmq_server import ZmqPolicyServer

from .conftest import flat_obs

CLIENTS = 16


def test_16_concurrent_clients_no_failures(const_policy, spec):
    duration = float(os.environ.get("GR00T_EXP_LOAD_SECONDS", "5"))
    counts = [0] * CLIENTS
    failures: list[str] = []
    start = threading.Barrier(CLIENTS + 1)
    with ZmqPolicyServer(const_policy, port=0) as srv:

        def client(i: int) -> None:
            obs = flat_obs(spec, seed=i)
            with PolicyClient(port=srv.port, timeout_ms=10000) as c:
                start.wait()
                stop_at = time.monotonic() + duration
                while time.monotonic() < stop_at:
                    try:
                        if counts[i] % 10 == 9:
                            assert c.ping()
                        else:
                            a = c.get_action(obs)
                            assert a["action.left_arm"].shape == (16, 7)
                            assert np.all(a["action.left_arm"] == 0.5)
                        counts[i] += 1
                    except Exception as e:  # any failure is recorded, the loop goes on
                        failures.append(f"client {i}: {type(e).__name__}: {e}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        start.wait()
        for t in threads:
            t.join(duration + 30)
        assert srv.running
    assert not failures, failures[:5]
    assert all(n > 0 for n in counts), counts
    print(
        f"\nload: {CLIENTS} clients, {duration:.0f} s, {sum(counts)} requests, {sum(counts) / duration:.0f} req/s"
    )
