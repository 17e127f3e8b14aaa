"""Guard process: runs one program in its own process group and takes the group down with it.

Usage: ``python -m console.supervision.guard --lifeline FD --status FD --parent PID -- CMD...``

The guard is the session leader. It runs the real command as its child in the same process
group, reports the child's pid on the ``--status`` pipe, forwards no signal (the supervisor signals
the whole group) and exits with the child's status. When the supervisor dies, however it dies, the
guard notices (end of file on the ``--lifeline`` pipe, or its parent-death signal) and SIGKILLs its
whole process group, grandchildren included.

The guard is also a child subreaper (Linux): a descendant that left the group for a session of its
own is adopted by the guard when its parent exits, instead of by init. The guard reaps what it
adopts while the program runs, and SIGKILLs and reaps all of it when the program exits or the
supervisor dies, so a double fork into a new session escapes no more than a plain child does.

When the guard itself is SIGKILLed, two things take the program with it: the program's parent-death
signal (SIGKILL, set between fork and exec) and a sentinel, a forked copy of the guard in the same
group that waits for end of file on a pipe only the guard writes to and then SIGKILLs the group,
the program's own children included. Only the standard library is imported, and little of it, to
keep start-up fast.
"""

from __future__ import annotations

import os
import select
import signal
import sys

#: Signals the guard survives (the group receives the supervisor's stop signal; the child decides).
GUARDED_SIGNALS = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGPIPE,
    signal.SIGALRM,
)
#: Signals after which a child dumps core; the guard reports them as 128 + N instead of dumping.
_CORE_SIGNALS = frozenset(
    {
        signal.SIGQUIT,
        signal.SIGILL,
        signal.SIGABRT,
        signal.SIGFPE,
        signal.SIGSEGV,
        signal.SIGBUS,
        signal.SIGSYS,
        signal.SIGTRAP,
        signal.SIGXCPU,
        signal.SIGXFSZ,
    }
)
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
#: Seconds between reaps of adopted processes that exited while the program runs.
REAP_EVERY = 1.0
_parent_pid = 0


def _kill_group() -> None:
    """SIGKILL the whole process group, the guard included."""
    os.killpg(0, signal.SIGKILL)


def _kill_everything() -> None:
    """The supervisor is gone: SIGKILL what the guard adopted, then the whole group."""
    _kill_children()
    _kill_group()


def _on_signal(signum: int, frame: object) -> None:
    # Every guarded signal doubles as a liveness check: the parent-death signal is one of them.
    if os.getppid() != _parent_pid:
        _kill_everything()


def _prctl(option: int, value: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the lifeline pipe and the sentinel still work
        pass


def _set_parent_death_signal(signum: int) -> None:
    _prctl(_PR_SET_PDEATHSIG, int(signum))


def _fork(child_handler: signal.Handlers) -> int:
    """Fork with the guarded signals blocked until the child has ``child_handler`` for them."""
    # Without the block, a stop signal arriving just after fork would run the guard's handler in
    # the child, which would see a foreign parent and SIGKILL the whole group.
    signal.pthread_sigmask(signal.SIG_BLOCK, GUARDED_SIGNALS)
    pid = os.fork()
    if pid == 0:
        for signum in GUARDED_SIGNALS:
            signal.signal(signum, child_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, GUARDED_SIGNALS)
    return pid


def _start_sentinel() -> int:
    """Fork the sentinel: it SIGKILLs the group as soon as the guard is gone, however it died."""
    read_end, _write_end = os.pipe()  # not inheritable: the program's exec closes its copy
    pid = _fork(signal.SIG_IGN)  # the group's stop signal is for the program, not the sentinel
    if pid != 0:
        os.close(read_end)
        return pid  # the guard keeps write_end open, unused, for as long as it lives
    try:
        os.closerange(0, read_end)  # stdio and the guard's pipes: nothing waits on the sentinel
        os.closerange(read_end + 1, 1 << 16)
        while os.read(read_end, 1):
            pass
    finally:
        _kill_group()
    os._exit(0)  # not reached: the group's SIGKILL includes the sentinel


def _spawn(command: list[str]) -> int:
    """Fork and exec ``command`` with SIGKILL as its parent-death signal; its pid."""
    guard = os.getpid()
    pid = _fork(signal.SIG_DFL)
    if pid != 0:
        return pid
    try:
        _set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != guard:  # the guard died before prctl
            os._exit(137)
        os.execvp(command[0], command)
    except OSError as exc:
        os.write(2, f"cannot run {command[0]!r}: {exc.strerror or exc}\n".encode())
    finally:
        os._exit(127)


def _processes(me: int) -> list[tuple[int, bytes, int, int]]:
    """Every process but ``me`` as (pid, state, parent pid, process group), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 2:
            found.append((int(entry), fields[0], int(fields[1]), int(fields[2])))
    return found


def _group_members(pgid: int, me: int) -> list[int]:
    """Live (non-zombie) processes of the process group ``pgid`` other than ``me``."""
    return [pid for pid, state, _, group in _processes(me) if state != b"Z" and group == pgid]


def _reap(pid: int) -> int | None:
    """Reap every child that exited (adopted ones too); the wait status of ``pid`` if it did."""
    found = None
    while True:
        try:
            done, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if done == 0:
            return found
        if done == pid:
            found = status


def _kill_children() -> None:
    """SIGKILL and reap every child, adopted ones included, until none is left."""
    if not os.path.isdir("/proc"):
        return
    me = os.getpid()
    for _ in range(100):
        children = [(pid, state) for pid, state, parent, _ in _processes(me) if parent == me]
        if not children:
            return
        for pid, state in children:
            if state != b"Z":
                try:  # noqa: SIM105
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        select.select([], [], [], 0.01)
        _reap(0)  # a killed child's own orphans are adopted in turn: the next round has them


def _end_sentinel(pid: int) -> None:
    """Kill and reap the sentinel, so that it never counts as a leftover."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass


def _kill_leftovers() -> None:
    """SIGKILL what is left of the group once the program itself has exited."""
    if not os.path.isdir("/proc"):
        return
    me, pgid = os.getpid(), os.getpgrp()
    for _ in range(100):
        members = _group_members(pgid, me)
        if not members:
            return
        for pid in members:
            try:  # noqa: SIM105 - contextlib is not worth its import time here
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        select.select([], [], [], 0.01)


def _wait_child(pid: int, lifeline: int) -> int:
    """Wait until the child exits (its wait status) or the lifeline closes (kill the group)."""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    while True:
        watched = [lifeline] if pidfd is None else [lifeline, pidfd]
        ready, _, _ = select.select(watched, [], [], 0.05 if pidfd is None else REAP_EVERY)
        if lifeline in ready:
            _kill_everything()
        # Adopted processes that exited are reaped here too, so no zombie piles up.
        status = _reap(pid)
        if status is not None:
            return status


def _exit_like(status: int) -> None:
    """Exit with the child's status; die of the child's signal when that is safe."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        if signum in _CORE_SIGNALS:
            os._exit(128 + signum)
        if signum != signal.SIGKILL:
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)
    os._exit(os.waitstatus_to_exitcode(status))


def main(argv: list[str]) -> None:
    """Run the guard with its command-line arguments (everything after the program name)."""
    global _parent_pid
    try:
        split = argv.index("--")
        options = dict(zip(argv[:split:2], argv[1:split:2], strict=True))
        lifeline, status_fd = int(options["--lifeline"]), int(options["--status"])
        _parent_pid = int(options["--parent"])
        command = argv[split + 1 :]
    except (ValueError, KeyError):
        command = []
    if not command:
        sys.stderr.write("usage: guard --lifeline FD --status FD --parent PID -- COMMAND...\n")
        os._exit(2)
    for signum in GUARDED_SIGNALS:
        signal.signal(signum, _on_signal)
    _set_parent_death_signal(signal.SIGHUP)
    if os.getppid() != _parent_pid:  # the parent died between fork and prctl
        _kill_group()
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    os.set_inheritable(lifeline, False)
    os.set_inheritable(status_fd, False)
    sentinel = _start_sentinel()
    pid = _spawn(command)
    try:  # noqa: SIM105
        os.write(status_fd, f"{pid}\n".encode())
    except OSError:
        pass
    os.close(status_fd)
    status = _wait_child(pid, lifeline)
    _end_sentinel(sentinel)
    _kill_leftovers()
    _kill_children()
    _exit_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
