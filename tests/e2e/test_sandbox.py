"""Hostile MBXP answers: in every language a fork bomb, an infinite loop, a memory hog, a network connection, escape
writes and kills of the parent; in python shared memory and tmpfs files past the memory limit, filling /tmp, /dev/shm
and the work directory past the disk cap, a host Unix socket and reads of host files. Each program exits 0 only if
its attack succeeded; every one must be contained and reported failed, nothing outside may be touched, and the
evaluation must finish."""
from __future__ import annotations

import os
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from evaluation.mbxp.identities import UIDS
from evaluation.mbxp.languages import LANGUAGES, missing_runtime
from evaluation.mbxp.runner import limits_of, run_problems
from evaluation.mbxp.sandbox import sandbox_unavailable
from llmkit.config.schema import EvaluationConfig

REPO = Path(__file__).resolve().parents[2]
ATTACKS = ("fork_bomb", "infinite_loop", "memory_hog", "network", "write_outside", "kill_parent")

# The import makes tsc exit 2 (no @types/node), which mxeval requires of a compiled TypeScript program.
TS_PRELUDE = ("import * as assert from 'assert';\n"
              "declare var require: any; declare var process: any; declare var Buffer: any;\n")
JS = {
    "fork_bomb": "const cp=require('child_process'); for(let n=0;n<1000;n++){ cp.spawn('sleep',['60'])"
                 ".on('error',()=>process.exit(1)); } setTimeout(()=>process.exit(0), 1000);",
    "infinite_loop": "while(true){}",
    "memory_hog": "const a=[]; for(let i=0;i<32;i++){ a.push(Buffer.alloc(1<<28, 1)); } process.exit(0);",
    "network": "const s=require('net').connect(PORT,'127.0.0.1',()=>{s.write('escaped'); process.exit(0)});"
               " s.on('error',()=>process.exit(1));",
    "write_outside": "require('fs').writeFileSync('OUT','escaped'); process.exit(0);",
    "kill_parent": "try{process.kill(process.ppid,'SIGKILL')}catch(e){} try{process.kill(-1,'SIGKILL')}catch(e){}"
                   " process.exit(1);",
}
PROGRAMS = {
    "python": {
        "fork_bomb": "import os, sys, time\ntry:\n    for n in range(1000):\n        if os.fork() == 0:\n"
                     "            time.sleep(60); os._exit(0)\nexcept OSError:\n    sys.exit(1)\nsys.exit(0)",
        "infinite_loop": "while True:\n    pass",
        "memory_hog": "import sys\na = [bytearray(1 << 28) for _ in range(32)]\nsys.exit(0)",
        "network": "import socket, sys\nsocket.create_connection(('127.0.0.1', PORT), timeout=2).sendall(b'escaped')"
                   "\nsys.exit(0)",
        "write_outside": "import sys\nopen('OUT', 'w').write('escaped')\nsys.exit(0)",
        "kill_parent": "import os, signal, sys\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\n"
                       "    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\nsys.exit(1)",
    },
    "javascript": JS,
    "typescript": {k: TS_PRELUDE + v for k, v in JS.items()},
    "ruby": {
        "fork_bomb": "begin\n  1000.times { fork { sleep 60 } }\nrescue\n  exit 1\nend\nexit 0",
        "infinite_loop": "loop {}",
        "memory_hog": "a = []\n32.times { a << ('x' * (1 << 28)) }\nexit 0",
        "network": "require 'socket'\nTCPSocket.new('127.0.0.1', PORT).write('escaped')\nexit 0",
        "write_outside": "File.write('OUT', 'escaped')\nexit 0",
        "kill_parent": "begin; Process.kill('KILL', Process.ppid); rescue; end\n"
                       "begin; Process.kill('KILL', -1); rescue; end\nexit 1",
    },
    "php": {
        "fork_bomb": "<?php for($n=0;$n<1000;$n++){ $p=@proc_open('sleep 60', [], $pipes); if($p===false) exit(1);}"
                     " exit(0);",
        "infinite_loop": "<?php while(true){}",
        "memory_hog": "<?php ini_set('memory_limit','-1'); $a=[]; for($i=0;$i<32;$i++){ $a[]=str_repeat('x',1<<28);}"
                      " exit(0);",
        "network": "<?php $s=@fsockopen('127.0.0.1', PORT, $e, $es, 2); if(!$s) exit(1); fwrite($s,'escaped'); exit(0);",
        "write_outside": "<?php if(@file_put_contents('OUT','escaped')===false) exit(1); exit(0);",
        "kill_parent": "<?php if(function_exists('posix_kill')){ @posix_kill(posix_getppid(),9); @posix_kill(-1,9);}"
                       " exit(1);",
    },
    "cpp": {
        "fork_bomb": "#include <unistd.h>\nint main(){ for(int n=0;n<1000;n++){ pid_t p=fork(); if(p<0) return 1;"
                     " if(p==0){ sleep(60); _exit(0);} } return 0; }",
        "infinite_loop": "int main(){ volatile unsigned long x=0; while(true){ x++; } }",
        "memory_hog": "#include <cstdlib>\n#include <cstring>\nint main(){ for(int i=0;i<32;i++){ char* p=(char*)"
                      "malloc(1<<28); if(!p) return 1; memset(p,1,1<<28);} return 0; }",
        "network": "#include <sys/socket.h>\n#include <netinet/in.h>\n#include <arpa/inet.h>\n#include <unistd.h>\n"
                   "int main(){ int s=socket(AF_INET,SOCK_STREAM,0); sockaddr_in a{}; a.sin_family=AF_INET;"
                   " a.sin_port=htons(PORT); inet_pton(AF_INET,\"127.0.0.1\",&a.sin_addr);"
                   " if(connect(s,(sockaddr*)&a,sizeof a)!=0) return 1; write(s,\"escaped\",7); return 0; }",
        "write_outside": "#include <cstdio>\nint main(){ FILE* f=fopen(\"OUT\",\"w\"); if(!f) return 1;"
                         " fputs(\"escaped\",f); fclose(f); return 0; }",
        "kill_parent": "#include <signal.h>\n#include <unistd.h>\nint main(){ kill(getppid(),SIGKILL);"
                       " kill(-1,SIGKILL); return 1; }",
    },
}
PYTHON_TEST = "def check(candidate):\n    pass"


class Listener:
    """A loopback TCP server that records any connection a sandboxed program manages to make."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._start()

    def _start(self):
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def test_hostile_programs_are_contained(tmp_path, listener):
    assert sandbox_unavailable() is None, sandbox_unavailable()
    languages = [lang for lang in LANGUAGES if missing_runtime(lang) is None]
    assert {"python", "javascript", "cpp"} <= set(languages)
    escapes = {}
    problems = []
    for language in languages:
        for attack in ATTACKS:
            test = PYTHON_TEST if language == "python" else ""
            source = PROGRAMS[language][attack].replace("PORT", str(listener.port))
            if attack != "write_outside":
                problems.append((language, attack, source, test))
                continue
            # Escape attempts into the repository, the home directory and the host's /tmp.
            for place, target in (("repo", REPO / f".escape-{language}"), ("home", Path.home() / f".escape-{language}"),
                                  ("tmp", tmp_path / f"escaped-{language}")):
                escapes[(language, place)] = target
                problems.append((language, f"write_{place}", source.replace("OUT", str(target)), test))
    limits = limits_of(EvaluationConfig(timeout_s=3, compile_timeout_s=60, memory_mb=1024, max_processes=32))
    results = run_problems(problems, limits, workers=2, progress=False)

    assert len(results) == len(problems)  # the evaluation finished, the parent survived every kill attempt
    in_private_tmp = {f"{language}_write_{place}" for (language, place), path in escapes.items()
                      if Path("/tmp") in path.parents}
    for result in results:
        # None of these paths exists in the sandbox's view, so a write fails, except into the sandbox's own /tmp
        # (a home under /tmp); what must never happen is a file on the host, checked below.
        if result.key not in in_private_tmp:
            assert not result.passed, f"{result.key} escaped the sandbox: {result.status} {result.detail}"
    by_key = {r.key: r.status for r in results}
    for language in languages:
        assert by_key[f"{language}_infinite_loop"] == "timeout"
    # Our own limits and kills are never taken for a signal from outside the evaluation.
    assert not [r.key for r in results if r.status == "killed"]
    assert listener.connections == 0
    for path in escapes.values():
        assert not path.exists(), f"{path} was written from inside the sandbox"
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) in UIDS]
    assert not leftovers, "sandboxed processes outlived their program"


def _uid(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except FileNotFoundError:
        return None


def test_a_fork_bomb_does_not_starve_the_next_program_on_its_slot():
    from llmkit.data.sample_content import MBXP

    honest = next(r for r in MBXP if r.language == "cpp")
    problems = [("python", "bomb", PROGRAMS["python"]["fork_bomb"], PYTHON_TEST),
                ("cpp", honest.entry_point, honest.solution, honest.test)]
    results = run_problems(problems, limits_of(EvaluationConfig(timeout_s=5, max_processes=16)), workers=1, progress=False)
    assert [r.passed for r in results] == [False, True], results


def test_a_failing_worker_never_hangs_the_evaluation(monkeypatch):
    import evaluation.mbxp.runner as runner

    real = runner.run_problem

    def flaky(sandbox, language, entry_point, answer, test):
        if entry_point == "crash":
            raise OSError("the worker lost its sandbox")
        return real(sandbox, language, entry_point, answer, test)

    monkeypatch.setattr(runner, "run_problem", flaky)
    problems = [("python", "crash", "def crash(): pass", PYTHON_TEST), ("python", "fine", "def fine(): pass", PYTHON_TEST)]
    results = run_problems(problems, limits_of(EvaluationConfig(timeout_s=5)), workers=2, progress=False)
    assert [(r.status, r.passed) for r in results] == [("error", False), ("passed", True)]


def test_packages_in_a_private_directory_still_reach_the_sandbox(tmp_path, monkeypatch):
    """A checkout under a directory only its owner can enter (mktemp -d, /root) must still evaluate TypeScript."""
    import shutil as sh

    import evaluation.mbxp.runner as runner
    from evaluation.mbxp.languages import node_modules_dir
    from llmkit.data.sample_content import MBXP

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    sh.copytree(node_modules_dir(), private / "node_modules", symlinks=True)
    monkeypatch.setattr(runner, "node_modules_dir", lambda: private / "node_modules")
    typescript = next(r for r in MBXP if r.language == "typescript")
    lodash = "const _ = require('lodash');\nif (_.sum([1, 2]) !== 3) { throw new Error('lodash'); }\n"
    problems = [("typescript", typescript.entry_point, typescript.solution, typescript.test),
                ("javascript", "uses_lodash", lodash, "")]
    results = run_problems(problems, limits_of(EvaluationConfig(timeout_s=10)), workers=1, progress=False)
    assert [r.passed for r in results] == [True, True], results


# Under CI=true they run whoever runs them (and fail without root), never skip.
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                               reason="cgroups, the size-capped work areas and the slot uids need root (CI runs these "
                               "as root)")
# Each exits 0 only if its attack succeeded. Limits below: 256 MB of memory; as root 64 MB of disk and 8192 files.
ESCAPES = {
    # Shared anonymous memory is not counted by RLIMIT_DATA.
    "shared_mmap": "import mmap, sys\nsize = 1 << 30\nm = mmap.mmap(-1, size, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)\n"
                   "for i in range(0, size, 4096):\n    m[i] = 1\nsys.exit(0)",
    "write_root": "import sys\ntry:\n    open('/escaped', 'w').write('x')\nexcept OSError:\n    sys.exit(1)\n"
                  "sys.exit(0)",
    # Any host path outside the runtimes' binds: the checkout, /run, /home, /var.
    "read_host": "import os, sys\nfound = []\nfor attempt in (lambda: open('REPO/README.md').read(), "
                 "lambda: os.listdir('REPO'), lambda: os.listdir('/run'), lambda: os.listdir('/home'), "
                 "lambda: os.listdir('/var')):\n    try:\n        found.append(attempt())\n    except OSError:\n"
                 "        pass\nsys.exit(0 if found else 1)",
}
DISK_FILLS = {
    # Files of 1 MiB (under the 16 MB file cap), 300 of them, into a RAM /tmp, /dev/shm and the work directory:
    # the cap on their total stops them, before the memory limit would.
    **{f"fill_{name}": "import sys\nchunk = b'x' * (1 << 20)\ntry:\n    for n in range(300):\n"
                       f"        with open('{where}/fill-%d' % n, 'wb') as f:\n            f.write(chunk)\n"
                       "except OSError as error:\n    print(error)\n    sys.exit(1)\nsys.exit(0)"
       for name, where in (("tmp", "/tmp"), ("shm", "/dev/shm"), ("workdir", "."))},
    "many_files": "import sys\ntry:\n    for n in range(20000):\n        open('f%d' % n, 'w').close()\n"
                  "except OSError as error:\n    print(error)\n    sys.exit(1)\nsys.exit(0)",
}
UNIX_CONNECT = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.settimeout(2)\n"
                "try:\n    s.connect('SOCKET')\nexcept OSError:\n    sys.exit(1)\nsys.exit(0)")


class UnixListener(Listener):
    """A Unix socket server on the host that anyone could connect to, were the path visible."""

    def __init__(self, directory: Path):
        self.path = directory / "listener.sock"
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(self.path))
        os.chmod(directory, 0o755)
        os.chmod(self.path, 0o777)
        self._start()


def test_shared_memory_host_sockets_and_host_files_are_out_of_reach():
    # Host places outside /tmp: the checkout and /run (where we may write there).
    directories = [Path(tempfile.mkdtemp(prefix=".sandbox-test-", dir=place)) for place in (REPO, Path("/run"))
                   if os.access(place, os.W_OK)] or [Path(tempfile.mkdtemp(prefix="llmkit-sandbox-test-"))]
    listeners = [UnixListener(directory) for directory in directories]
    try:
        problems = [("python", name, source.replace("REPO", str(REPO)), PYTHON_TEST)
                    for name, source in ESCAPES.items()]
        problems += [("python", f"unix_socket_{n}", UNIX_CONNECT.replace("SOCKET", str(listener.path)), PYTHON_TEST)
                     for n, listener in enumerate(listeners)]
        limits = limits_of(EvaluationConfig(timeout_s=10, memory_mb=256))
        results = run_problems(problems, limits, workers=2, progress=False)
        connections = [listener.connections for listener in listeners]
    finally:
        for listener in listeners:
            listener.close()
        for directory in directories:
            for entry in directory.iterdir():
                entry.unlink()
            directory.rmdir()
    assert len(results) == len(problems)
    _contained(results)
    assert connections == [0] * len(listeners)
    assert not Path("/escaped").exists()


def _contained(results) -> None:
    escaped = [(r.key, r.status, r.detail) for r in results if r.passed or r.status not in ("failed", "timeout")]
    assert not escaped, f"escaped the sandbox, or was taken for an outside kill: {escaped}"


@ROOT_ONLY
def test_disk_fills_stop_at_the_cap():
    problems = [("python", name, source, PYTHON_TEST) for name, source in DISK_FILLS.items()]
    results = run_problems(problems, limits_of(EvaluationConfig(timeout_s=10, memory_mb=512)), workers=2,
                           progress=False)
    _contained(results)
    assert all("No space left on device" in r.detail for r in results), results


@ROOT_ONLY
def test_as_root_memory_is_limited_by_a_cgroup_and_the_work_areas_are_capped():
    from evaluation.mbxp.pool import open_sandboxes

    limits = limits_of(EvaluationConfig(timeout_s=10, memory_mb=256))
    with open_sandboxes(2, limits) as sandboxes:
        assert all(s.cgroups is not None for s in sandboxes), "no cgroup memory limit on this machine"
        assert all(s.namespace_fd is not None for s in sandboxes), "the work areas are not size-capped"
        assert len({s.uid for s in sandboxes}) == 2 and all(s.uid in UIDS for s in sandboxes)
        sandbox = sandboxes[0]
        hog = "import mmap\nm = mmap.mmap(-1, 1 << 30, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)\n" \
              "for i in range(0, 1 << 30, 4096):\n    m[i] = 1\n"
        workdir = sandbox.workdir()
        (workdir / "hog.py").write_text(hog)
        execution = sandbox.run(("python3", "hog.py"), workdir, 10)
        sandbox.cleanup(workdir)
        # Killed by the OOM killer at the cgroup limit: ours, never taken for an outside kill.
        assert execution.out_of_memory and execution.outside_signal is None, execution
        assert execution.returncode == 128 + 9
        workdir = sandbox.workdir()
        execution = sandbox.run(("sh", "-c", "df -k /tmp . /dev/shm | tail -n 3"), workdir, 10)
        sizes = [int(line.split()[1]) for line in execution.output.splitlines()]
        assert sizes == [limits.max_disk_mb << 10] * 3, execution.output
        sandbox.cleanup(workdir)
