"""A Spark standalone cluster on this machine: one master and one worker on 127.0.0.1, started from
pyspark's own `bin/spark-class` (org.apache.spark.deploy.master.Master and worker.Worker; nothing
else is downloaded), for `make spark-cluster-test` and `make bench-spark`.

Both daemons listen on ports the system picks (port 0), so two runs on one machine never collide;
the master's URL is read from its own log line. Each must come up within a deadline, else both are
stopped and the error quotes the end of its log. Their process ids are written into the run's
folder (`master.pid`, `worker.pid`) so that a wrapper can stop them if this process dies first
(`python -m greenery.tools.spark_cluster stop FOLDER`, the make target's trap); a pid is only ever
signalled while /proc says it is still the Spark daemon we started.

    python -m greenery.tools.spark_cluster start FOLDER   # prints the master URL, leaves both running
    python -m greenery.tools.spark_cluster stop FOLDER    # stops what FOLDER's pid files name
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
MASTER_UP = re.compile(r"Starting Spark master at (spark://127\.0\.0\.1:\d+)")
LEADER = "I have been elected leader"  # the master accepts workers from here on
WORKER_UP = "Successfully registered with master"
START_SECONDS = 90.0  # per daemon: a JVM start on a busy 2-core machine takes 5-20 s
STOP_SECONDS = 20.0


class ClusterError(RuntimeError):
    """A daemon did not come up in time, or exited: the message quotes the end of its log."""


@dataclass
class Cluster:
    url: str  # spark://127.0.0.1:PORT
    folder: Path  # logs, pid files and the worker's work folder
    processes: dict[str, subprocess.Popen]


def spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


def _environment(folder: Path) -> dict[str, str]:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(folder),
           "SPARK_WORKER_DIR": str(folder / "work")}  # not the default, inside the installed pyspark
    env.pop("SPARK_HOME", None)  # spark-class finds the installed pyspark's own
    return env


def _launch(folder: Path, name: str, arguments: list[str]) -> subprocess.Popen:
    log = (folder / f"{name}.log").open("wb")
    try:
        # spark-class ends in `exec java ...`: the pid is the daemon's own.
        process = subprocess.Popen([str(spark_class()), *arguments], stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=_environment(folder), start_new_session=True)
    finally:
        log.close()
    (folder / f"{name}.pid").write_text(f"{process.pid}\n")
    return process


def _log_tail(folder: Path, name: str, lines: int = 15) -> str:
    path = folder / f"{name}.log"
    text = path.read_text(errors="replace") if path.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_for(folder: Path, name: str, process: subprocess.Popen, wanted, seconds: float) -> re.Match | bool:
    """Poll the daemon's log until `wanted` (a regex or a text) appears; ClusterError on exit or deadline."""
    deadline = time.monotonic() + seconds
    path = folder / f"{name}.log"
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.is_file() else ""
        found = wanted.search(text) if isinstance(wanted, re.Pattern) else (wanted in text)
        if found:
            return found
        if process.poll() is not None:
            raise ClusterError(f"the Spark {name} exited with code {process.returncode} before it was up:\n"
                               f"{_log_tail(folder, name)}")
        time.sleep(0.2)
    raise ClusterError(f"the Spark {name} was not up within {seconds:.0f} s:\n{_log_tail(folder, name)}")


def start(folder: Path, cores: int | None = None, memory: str = "2g", seconds: float = START_SECONDS) -> Cluster:
    """Start the master, then the worker, each within `seconds`; stop both on any failure.

    First, when it is missing, the Spark JVMs' class archive is written (greenery.warehouse.engines.spark's
    `write_class_archive`, once per Java and pyspark): the builds measured or tested on this cluster
    then all start from it, rather than the first one paying for it."""
    from greenery.warehouse.engines.spark import write_class_archive

    write_class_archive()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "work").mkdir(exist_ok=True)
    cores = cores or os.cpu_count() or 1
    processes: dict[str, subprocess.Popen] = {}
    cluster = Cluster("", folder, processes)
    try:
        processes["master"] = _launch(folder, "master", [MASTER_CLASS, "--host", "127.0.0.1", "--port", "0",
                                                         "--webui-port", "0"])
        url = _wait_for(folder, "master", processes["master"], MASTER_UP, seconds).group(1)
        _wait_for(folder, "master", processes["master"], LEADER, seconds)
        cluster.url = url
        processes["worker"] = _launch(folder, "worker", [WORKER_CLASS, "--host", "127.0.0.1", "--port", "0",
                                                         "--webui-port", "0", "--cores", str(cores),
                                                         "--memory", memory, "--work-dir", str(folder / "work"),
                                                         url])
        _wait_for(folder, "worker", processes["worker"], WORKER_UP, seconds)
    except BaseException:
        stop(cluster)
        raise
    return cluster


def _is_our_daemon(pid: int) -> bool:
    """The pid is still a Spark master or worker JVM (not a process that reused the number)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.decode(errors="replace") in (MASTER_CLASS, WORKER_CLASS) for part in command)


def _stop_pid(pid: int, process: subprocess.Popen | None = None) -> None:
    """SIGTERM, then SIGKILL after STOP_SECONDS; only while the pid is still one of our daemons."""
    if not _is_our_daemon(pid):
        if process is not None:
            process.poll()
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not _is_our_daemon(pid):
            return
        time.sleep(0.1)
    if _is_our_daemon(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait(timeout=STOP_SECONDS)


def stop(cluster: Cluster) -> None:
    """The worker first (it would otherwise try to reconnect), then the master; pid files removed."""
    for name in ("worker", "master"):
        process = cluster.processes.get(name)
        if process is not None:
            _stop_pid(process.pid, process)
            (cluster.folder / f"{name}.pid").unlink(missing_ok=True)


def stop_recorded(folder: Path) -> list[int]:
    """Stop the daemons whose pid files are in `folder` (left by a run that died); the pids stopped."""
    stopped = []
    for name in ("worker", "master"):
        pid_file = folder / f"{name}.pid"
        if not pid_file.is_file():
            continue
        text = pid_file.read_text().strip()
        if text.isdigit() and _is_our_daemon(int(text)):
            _stop_pid(int(text))
            stopped.append(int(text))
        pid_file.unlink(missing_ok=True)
    return stopped


@contextlib.contextmanager
def running(folder: Path, **options) -> Iterator[Cluster]:
    cluster = start(folder, **options)
    try:
        yield cluster
    finally:
        stop(cluster)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m greenery.tools.spark_cluster",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("folder", type=Path, help="where the logs and pid files are kept")
    args = parser.parse_args(argv)
    if args.action == "stop":
        stopped = stop_recorded(args.folder)
        if stopped:
            print(f"stopped Spark daemons {', '.join(map(str, stopped))}")
        return
    try:
        cluster = start(args.folder)
    except ClusterError as error:
        sys.exit(f"error: {error}")
    print(cluster.url)


if __name__ == "__main__":
    main()
