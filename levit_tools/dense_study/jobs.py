"""Runs side by side: each a ``tools/train.py`` child process at one torch thread, started
as a slot frees up, timed by the wall clock and by its CPU time (``wait4``'s rusage: on a
shared machine the CPU time is what the run cost, the wall time what it waited)."""
import os
import subprocess
import sys
import time
from collections import deque
from typing import List, Optional, Sequence


class Job:
    """One child process whose output goes to ``log_path``."""

    def __init__(self, name: str, cmd: Sequence[str], log_path: str, cwd: str,
                 env: dict):
        self.name, self.cmd, self.log_path, self.cwd, self.env = (name, list(cmd),
                                                                  log_path, cwd, env)
        self.proc: Optional[subprocess.Popen] = None
        self.wall_s = self.cpu_s = None
        self.error: Optional[str] = None

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        with open(self.log_path, 'w') as log:
            log.write(f'$ python {" ".join(self.cmd)}\n')
            log.flush()
            self.started = time.time()
            self.proc = subprocess.Popen([sys.executable] + self.cmd, cwd=self.cwd,
                                         env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)

    def poll(self) -> bool:
        """True once the process has ended (its times and any error recorded)."""
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.wall_s = time.time() - self.started
        self.cpu_s = usage.ru_utime + usage.ru_stime
        if self.proc.returncode:
            self.error = f'exit code {self.proc.returncode}; see {self.log_path}'
        return True

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            os.waitpid(self.proc.pid, 0)
            self.proc.returncode = -9


def run_jobs(jobs: List[Job], parallel: int, poll_s: float = 2.0) -> None:
    """Run ``jobs`` ``parallel`` at a time, in order; on an interruption (Ctrl-C) the
    running ones are killed, none is left behind."""
    pending, active = deque(jobs), []
    try:
        while pending or active:
            while pending and len(active) < parallel:
                job = pending.popleft()
                print(f'  start {job.name}', flush=True)
                job.start()
                active.append(job)
            time.sleep(poll_s)
            for job in [job for job in active if job.poll()]:
                active.remove(job)
                status = job.error or (f'done in {job.wall_s:.0f} s wall, '
                                       f'{job.cpu_s:.0f} s CPU')
                print(f'  {job.name}: {status}', flush=True)
    finally:
        for job in active:
            job.kill()
