"""Finding, or installing, the tools jobctl is compared with.

Debian packages come from apt-get (only the missing ones); pueue comes from
crates.io with `cargo install --locked pueue` into `bench/.peers`, only in
the full run. A tool that cannot be had is recorded with the reason, so its
comparisons are reported as skipped rather than dropped.
"""

import os

from .proc import Failed, run, which

# tool -> (Debian package, executables it must provide)
DEBIAN = {
    "parallel": ("parallel", ["parallel"]),
    "tsp": ("task-spooler", ["tsp"]),
    "pdsh": ("pdsh", ["pdsh"]),
    "parallel-ssh": ("pssh", ["parallel-ssh"]),
    "time": ("time", ["/usr/bin/time"]),
    "sshd": ("openssh-server", ["/usr/sbin/sshd"]),
    "ssh": ("openssh-client", ["ssh", "ssh-keygen"]),
}


class Peers:
    """Paths of the tools found, and why the others are missing."""

    def __init__(self, root, log):
        self.root = root
        self.log = log
        self.path = {}
        self.missing = {}
        self.peers_dir = os.path.join(root, "bench", ".peers")
        self.pueue_off = False

    def get(self, tool):
        """The tool's path, or None (then `why(tool)` says why).

        pueue is looked for again when asked for, so one installed while the
        run goes on (by an earlier `bench/run` still compiling it) is used.
        """
        if tool in ("pueue", "pueued") and tool not in self.path and not self.pueue_off:
            self.pueue(install=False)
            if "pueue" in self.path:
                self.missing.pop("pueue", None)
        return self.path.get(tool)

    def why(self, tool):
        """Why a tool is missing."""
        return self.missing.get(tool, f"{tool} not found")

    def _find(self, tool):
        for exe in DEBIAN[tool][1]:
            p = exe if exe.startswith("/") and os.access(exe, os.X_OK) else which(exe)
            if not p:
                return None
        first = DEBIAN[tool][1][0]
        return first if first.startswith("/") else which(first)

    def debian(self, install=True):
        """Finds the Debian-packaged peers, installing the missing ones."""
        need = [t for t in DEBIAN if not self._find(t)]
        if need and install:
            pkgs = sorted({DEBIAN[t][0] for t in need})
            self.log(f"installing from Debian: {' '.join(pkgs)}")
            self._apt(pkgs)
        for t in DEBIAN:
            p = self._find(t)
            if p:
                self.path[t] = p
            elif t not in self.missing:
                self.missing[t] = f"{DEBIAN[t][0]} is not installed" + (
                    "" if install else " (--no-install)"
                )
        gp = self.path.get("parallel")
        if gp:
            out = run([gp, "--version"], check=False).stdout.decode(errors="replace")
            if "GNU parallel" not in out:
                del self.path["parallel"]
                self.missing["parallel"] = f"{gp} is not GNU parallel (moreutils?)"
        self.path["xargs"] = which("xargs")

    def _apt(self, pkgs):
        prefix = []
        if os.geteuid() != 0:
            if not which("sudo"):
                for t, (pkg, _) in DEBIAN.items():
                    if pkg in pkgs:
                        self.missing[t] = f"{pkg} is not installed and there is no root or sudo"
                return
            prefix = ["sudo", "-n"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = prefix + ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + pkgs
        try:
            run(cmd, env=env, timeout=600)
            return
        except Failed:
            pass
        try:
            run(prefix + ["apt-get", "update", "-qq"], env=env, timeout=600)
            run(cmd, env=env, timeout=600)
        except Failed as e:
            for t, (pkg, _) in DEBIAN.items():
                if pkg in pkgs:
                    self.missing[t] = f"apt-get install {pkg} failed: {e}"

    def pueue(self, install):
        """Finds pueue and pueued (bench/.peers/bin, then PATH); installs if asked."""
        local = os.path.join(self.peers_dir, "bin")

        def find():
            a, b = which("pueue", [local]), which("pueued", [local])
            return (a, b) if a and b else None

        found = find()
        if not found and install:
            cargo = which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
            if not os.access(cargo, os.X_OK):
                self.missing["pueue"] = "cargo not found to install pueue"
                return
            self.log("installing pueue from crates.io into bench/.peers (a few minutes)")
            env = dict(os.environ)
            env.pop("CARGO_TARGET_DIR", None)
            try:
                run(
                    [cargo, "install", "--locked", "--quiet", "pueue", "--root", self.peers_dir],
                    env=env,
                    timeout=1500,
                )
            except Failed as e:
                self.missing["pueue"] = f"cargo install pueue failed: {e}"
                return
            found = find()
        if found:
            self.path["pueue"], self.path["pueued"] = found
        elif not install:
            self.missing["pueue"] = (
                "pueue not found in bench/.peers or PATH (the full run installs it unless --no-install)"
            )
        else:
            self.missing["pueue"] = f"pueue not in {local} after cargo install"
