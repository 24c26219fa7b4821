"""Stand in for a process forked by the warm server (greenery/publisher/warm_server.py): standard library only.

`python -I -S warm_client.py ROLE ARGS...` hands the server this process's role, arguments,
working folder, environment and standard streams; the server forks a process that runs the role
with them. This process relays the signals it receives to that fork and exits as it exits, so the
one who started it (the chapter runner, jupyter_client) sees the process it asked for. It dies
with its parent; the server kills the fork when this process is gone.
"""

import contextlib
import ctypes
import json
import os
import signal
import socket
import sys

SOCKET_ENV = "GREENERY_WARM_SOCKET"
NO_SERVER = "greenery-warm-client: no server: "  # its one line when nobody is at the socket (the server is gone)
CLIENT = __file__  # run by path, with -I -S: no site-packages, nothing of ours imported


def client_command(role: str, *args: str) -> list[str]:
    """The command that runs `role` in a fork of the server: `-I -S` start Python without site-packages."""
    return [sys.executable, "-I", "-S", str(CLIENT), role, *args]


RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def main(role, args):
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    request = {"role": role, "args": args, "cwd": os.getcwd(), "env": dict(os.environ)}
    try:
        server.connect(os.environ[SOCKET_ENV])
        socket.send_fds(server, [json.dumps(request).encode()], [0, 1, 2])
        replies = server.makefile("r")
        pid = int(replies.readline())
    except (OSError, ValueError) as error:  # nobody at the socket, or it closed before naming a fork: the server
        # is gone (who started us may know why)
        why = f"{type(error).__name__}: {error}" if isinstance(error, OSError) else "connection closed unanswered"
        print(f"{NO_SERVER}{why}", file=sys.stderr)
        return 1

    def relay(received, _frame):
        with contextlib.suppress(ProcessLookupError):  # the fork has just ended: its status is on its way
            os.kill(pid, received)

    for number in RELAYED:
        signal.signal(number, relay)
    try:
        status = replies.readline()
    except OSError:  # reset: the server is gone
        status = ""
    return int(status) if status.strip() else 1  # no status: the server is gone, and the fork with it


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
