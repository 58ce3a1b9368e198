"""A multi-node local Ray cluster for the tests that lose nodes, run in a process of its own.

Ray's own multi-node testing tool (`ray.cluster_utils.Cluster`) starts a head node and worker nodes
on this machine, each node its own raylet with its own CPUs, and removes a node by killing its
processes (SIGKILL: raylet, object store and the workers it started). It lives in a helper process
(`RayCluster` below starts it) so that its Ray globals never mix with a Ray instance the test
process itself may have joined (`rayfixtures.ray_address`); drivers (`mirrorwatch scan ... --ray
ADDRESS`) join it by its address.

The helper reads one command a line on stdin and answers one JSON line on stdout (after MARK):
    add                 start one more worker node             -> {"added": NODE_ID}
    kill-busy TASK      remove a worker node running TASK now  -> {"killed": NODE_ID or null}
    kill-all            remove every worker node               -> {"killed": [NODE_ID, ...]}
    nodes               live worker nodes                      -> {"nodes": [NODE_ID, ...]}
    quit                remove every node and exit
The head node has no CPU: every task runs on a worker node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

MARK = "@raycluster "  # the helper's answers on stdout
NODE_ARGS = {"num_cpus": 1, "object_store_memory": 80 * 1024**2}
# GCS notices a node whose raylet stopped answering after period x threshold (Ray's defaults: 3 s x 5)
HEAD_ARGS = {"num_cpus": 0, "object_store_memory": 80 * 1024**2, "include_dashboard": False,
             "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4}}


class RayCluster:
    """The helper process, from the test's side."""

    def __init__(self, workers: int, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(workers)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})}, start_new_session=True)
        first = self._answer()
        self.address: str = first["address"]

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:  # (anything else Ray may print on stdout is skipped)
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"the Ray cluster helper exited ({self.proc.wait()})")
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.ask("quit")
                self.proc.wait(timeout=60)
        except (OSError, AssertionError, subprocess.TimeoutExpired, ValueError):
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _main(workers: int) -> None:
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    from procs import children, cmdline

    cluster = Cluster(initialize_head=True, head_node_args=HEAD_ARGS)
    for _ in range(workers):
        cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()

    def raylet(node: Any) -> int:
        return node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid

    def reply(data: dict[str, Any]) -> None:
        sys.stdout.write(MARK + json.dumps(data) + "\n")
        sys.stdout.flush()

    reply({"address": cluster.address})
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "add":
            reply({"added": cluster.add_node(**NODE_ARGS).node_id})
        elif cmd == "kill-busy":
            killed = None
            for node in list(cluster.worker_nodes):
                if any(cmdline(pid).startswith(f"ray::{arg}") for pid in children(raylet(node))):
                    cluster.remove_node(node, allow_graceful=False)
                    killed = node.node_id
                    break
            reply({"killed": killed})
        elif cmd == "kill-all":
            gone = []
            for node in list(cluster.worker_nodes):
                cluster.remove_node(node, allow_graceful=False)
                gone.append(node.node_id)
            reply({"killed": gone})
        elif cmd == "nodes":
            reply({"nodes": [n.node_id for n in cluster.worker_nodes]})
        elif cmd == "quit":
            break
        else:
            reply({"error": f"unknown command {cmd!r}"})
    cluster.shutdown()
    del ray


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    _main(int(sys.argv[1]))
