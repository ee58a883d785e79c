"""Running commands, timing them, and ending what the bench started.

Every long-lived process the bench starts (sshd, daemons of the peers and of
jobctl) is registered here by pid and killed at exit, also when the run
fails or is interrupted.
"""

import os
import signal
import subprocess
import time


class Failed(Exception):
    """A command the bench ran did not succeed."""


_owned = []  # (pid, what, stop_fn or None)


def own(pid, what, stop=None):
    """Registers a process the bench started; `stop` is tried before SIGTERM."""
    _owned.append((pid, what, stop))


def alive(pid):
    """True if the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def kill(pid, grace=3.0):
    """SIGTERM, then SIGKILL after `grace` seconds; reaps it if it is our child."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                pass
            if not alive(pid):
                return
            time.sleep(0.02)


def release(pid):
    """Ends one owned process now and forgets it."""
    for i, (p, _what, stop) in enumerate(list(_owned)):
        if p == pid:
            _owned.pop(i)
            if stop:
                try:
                    stop()
                except Exception:  # noqa: BLE001 - best effort, the kill follows
                    pass
            if alive(p):
                kill(p)
            return


def cleanup():
    """Ends every owned process (newest first)."""
    while _owned:
        release(_owned[-1][0])


def tail(text, n=3):
    """The last `n` non-empty lines of a command's output, joined."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [l for l in (text or "").splitlines() if l.strip()]
    return " | ".join(lines[-n:])


def run(cmd, env=None, timeout=600, check=True, stdin=None, stdout=subprocess.PIPE):
    """Runs `cmd` (a list, or a bash script as a string); returns CompletedProcess."""
    if isinstance(cmd, str):
        cmd = ["bash", "-c", "set -e -o pipefail\n" + cmd]
    try:
        p = subprocess.run(
            cmd,
            env=env,
            timeout=timeout,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
        )
    except subprocess.TimeoutExpired as e:
        raise Failed(f"timed out after {timeout:.0f} s: {short(cmd)}") from e
    except OSError as e:
        raise Failed(f"{short(cmd)}: {e}") from e
    if check and p.returncode != 0:
        raise Failed(
            f"exit {p.returncode}: {short(cmd)}: {tail(p.stderr) or tail(p.stdout or '')}"
        )
    return p


def timed(cmd, env=None, timeout=600):
    """Runs `cmd` with output discarded; returns its wall-clock seconds."""
    t0 = time.perf_counter()
    run(cmd, env=env, timeout=timeout, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def short(cmd):
    """A command shortened for messages."""
    s = cmd[-1] if cmd[:2] == ["bash", "-c"] else " ".join(map(str, cmd))
    s = " ".join(s.replace("set -e -o pipefail\n", "").split())
    return s if len(s) < 120 else s[:117] + "..."


def which(name, extra_dirs=()):
    """The path of an executable in `extra_dirs` or PATH, or None."""
    for d in list(extra_dirs) + os.environ.get("PATH", "").split(":"):
        p = os.path.join(d, name)
        if d and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None
