"""Exec a command that the kernel kills when its parent dies.

supervisord launches every program through this shim
(`python -m service.pdeathsig [--parent-pidfile F] [--env-file F] -- argv...`): it sets
PR_SET_PDEATHSIG(SIGKILL) on itself and execs the real command, which keeps the setting.
So a SIGKILLed supervisord cannot leave its children running. The same helper sets
PR_SET_PDEATHSIG(SIGTERM) on supervisord itself (see service.processes).

Only the standard library is used: supervisord runs this file by path, whatever the
program's working directory and sys.path are.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
# Look the symbol up now, in the parent: a preexec_fn must not dlsym after fork.
_PRCTL = _LIBC.prctl if _LIBC is not None else None


def set_pdeathsig(sig: int) -> None:
    """Ask the kernel to send `sig` to this process when its parent thread exits."""
    if _PRCTL is None:
        return  # not Linux: no such guarantee, the supervisor's stop() still cleans up
    if _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def die_with_parent(sig: int, parent_pid: int) -> None:
    """set_pdeathsig, closing the race where the parent died before the prctl call."""
    set_pdeathsig(sig)
    if os.getppid() != parent_pid:
        os._exit(1)


def _parse(argv: list[str]) -> tuple[str | None, str | None, list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: pdeathsig [--parent-pidfile F] [--env-file F] -- argv...")
    split = argv.index("--")
    opts, command = argv[:split], argv[split + 1 :]
    values = dict(zip(opts[::2], opts[1::2], strict=True))
    if not command or set(values) - {"--parent-pidfile", "--env-file"}:
        raise SystemExit(f"pdeathsig: bad arguments {argv!r}")
    return values.get("--parent-pidfile"), values.get("--env-file"), command


def _expected_parent(pidfile: str | None) -> int:
    """The parent we must still have: supervisord's pid from its pidfile, else the current one.

    supervisord writes its pidfile before it spawns anything, so reading it closes the race
    even when the parent died before this process looked at os.getppid().
    """
    if pidfile:
        try:
            with open(pidfile, encoding="ascii") as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            pass
    return os.getppid()


def main(argv: list[str] | None = None) -> int:
    pidfile, env_file, command = _parse(sys.argv[1:] if argv is None else argv)
    parent = _expected_parent(pidfile)
    set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:
        print(f"pdeathsig: parent {parent} is gone; not starting {command[0]}", file=sys.stderr)
        return 1
    env = dict(os.environ)
    if env_file:
        with open(env_file, encoding="utf-8") as handle:
            env = json.load(handle)
    os.execvpe(command[0], command, env)
    return 127  # not reached: execvpe raises on failure


if __name__ == "__main__":
    sys.exit(main())
