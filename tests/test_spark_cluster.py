"""The standalone cluster's helper (greenery.tools.spark_cluster) only ever signals its own daemons:
a pid file naming any other process is ignored. (The cluster itself runs in `make spark-cluster-test`.)"""

from __future__ import annotations

import subprocess
import sys
import time

from greenery.tools import spark_cluster


def test_a_pid_that_is_not_a_spark_daemon_is_left_alone(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "master.pid").write_text(f"{other.pid}\n")
        (tmp_path / "worker.pid").write_text("not a pid\n")
        assert spark_cluster.stop_recorded(tmp_path) == []
        assert other.poll() is None  # still running
        assert not (tmp_path / "master.pid").exists() and not (tmp_path / "worker.pid").exists()
    finally:
        other.kill()
        other.wait(timeout=10)


def test_a_daemon_is_recognised_by_its_main_class(tmp_path):
    """A process whose command line names the master's class counts as ours; its pid file stops it."""
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", spark_cluster.MASTER_CLASS])
    try:
        deadline = time.monotonic() + 10  # until the fork has exec'd: its command line is then its own
        while not spark_cluster._is_our_daemon(fake.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert spark_cluster._is_our_daemon(fake.pid)
        (tmp_path / "master.pid").write_text(f"{fake.pid}\n")
        assert spark_cluster.stop_recorded(tmp_path) == [fake.pid]
        assert fake.wait(timeout=10) is not None  # stopped (SIGTERM)
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait(timeout=10)
