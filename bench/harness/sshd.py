"""A private OpenSSH server on loopback with throwaway keys and a temp HOME.

The server listens on a free port of 127.0.0.1; an ssh config names 50
aliases (a1..a50) of it, so a fan-out to "50 hosts" is 50 connections to
this one server. Each alias logs in with its own copy of the client key:
as with 50 real hosts, no tool can reuse one alias's connection for
another (jobctl keeps connections for reuse per address, user and keys). Root's ~/.bashrc (pyenv here, ~100 ms per remote command)
is hidden from sshd alone: it runs in a private mount namespace where that
file is /dev/null bind-mounted. The server is killed by pid at the end,
also when the run fails.
"""

import os
import pwd
import shutil
import socket
import subprocess
import time

from . import proc
from .proc import Failed, run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackSshd:
    """Use as a context manager; `config` is the client config, `home` the temp HOME."""

    def __init__(self, ctx, hosts=50, name="sshd"):
        self.ctx = ctx
        self.hosts = [f"a{i}" for i in range(1, hosts + 1)]
        # Its own folders under the run's: several servers in one run.
        self.dir = os.path.join(ctx.work, name)
        self.home = os.path.join(ctx.work, f"{name}-home")
        self.config = os.path.join(self.home, ".ssh", "config")
        self.port = None
        self.pid = None
        self.masked = None
        self.kex_note = (
            "OpenSSH clients (ssh, pdsh, parallel-ssh) use curve25519-sha256, the key "
            "exchange jobctl's libssh2 negotiates; OpenSSH 9's default sntrup761x25519 "
            "costs ~0.1 s of CPU per connection on each side here"
        )

    def __enter__(self):
        d, ssh = self.dir, os.path.join(self.home, ".ssh")
        os.makedirs(d)
        os.makedirs(ssh, mode=0o700)
        keygen = proc.which("ssh-keygen")
        run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/host_ed25519"])
        run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", f"{ssh}/id_ed25519"])
        with open(f"{ssh}/id_ed25519.pub") as f, open(f"{d}/authorized_keys", "w") as g:
            g.write(f.read())
        self.port = free_port()
        cfg = f"{d}/sshd_config"
        with open(cfg, "w") as f:
            f.write(
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\n"
                f"PidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n"
                "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "UsePAM no\nUseDNS no\nMaxSessions 200\n"
                # Unauthenticated connections at once before sshd drops new
                # ones: at least one per host, so a full fan-out is never throttled.
                f"MaxStartups {max(200, len(self.hosts))}\n"
            )
        try:
            os.makedirs("/run/sshd", exist_ok=True)
        except OSError:
            pass
        user = pwd.getpwuid(os.getuid())
        bashrc = os.path.join(user.pw_dir, ".bashrc")
        sshd = "/usr/sbin/sshd"
        cmd = [sshd, "-D", "-e", "-f", cfg]
        if os.path.exists(bashrc) and os.geteuid() == 0 and proc.which("unshare"):
            cmd = [
                "unshare", "-m", "--propagation", "private", "sh", "-c",
                f'mount --bind /dev/null "{bashrc}" && exec {sshd} -D -e -f "{cfg}"',
            ]
            self.masked = (
                f"{bashrc} is hidden from sshd (/dev/null bind-mounted over it in a "
                "private mount namespace), so remote commands do not pay for it"
            )
        elif os.path.exists(bashrc):
            self.masked = f"{bashrc} could not be masked (not root): remote commands run it"
        log = open(f"{d}/sshd.log", "wb")
        p = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = p.pid
        proc.own(p.pid, "sshd")
        end = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if p.poll() is not None or time.monotonic() > end:
                    proc.release(p.pid)
                    with open(f"{d}/sshd.log", "rb") as f:
                        raise Failed("sshd did not start: " + proc.tail(f.read()))
                time.sleep(0.05)
        with open(f"{d}/host_ed25519.pub") as f:
            kind, key = f.read().split()[:2]
        with open(f"{ssh}/known_hosts", "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {kind} {key}\n")
        with open(self.config, "w") as f:
            for host in self.hosts:
                key_copy = f"{ssh}/id_{host}"
                shutil.copyfile(f"{ssh}/id_ed25519", key_copy)
                os.chmod(key_copy, 0o600)
                f.write(f"Host {host}\n  IdentityFile {key_copy}\n")
            f.write(
                f"Host {' '.join(self.hosts)}\n"
                f"  HostName 127.0.0.1\n  Port {self.port}\n  User {user.pw_name}\n"
                "  IdentitiesOnly yes\n"
                f"  UserKnownHostsFile {ssh}/known_hosts\n  StrictHostKeyChecking yes\n"
                "  BatchMode yes\n  LogLevel ERROR\n  KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\n"
            )
        os.chmod(self.config, 0o600)
        # One real login proves the setup before anything is timed.
        run(["ssh", "-F", self.config, self.hosts[0], "true"], timeout=30)
        return self

    def __exit__(self, *exc):
        if self.pid:
            proc.release(self.pid)
        return False
