"""Many people at once against a served chat page, through its `/ask` API (gradio_client).

    .venv/bin/python benchmarks/load.py [--users 50] [--questions 4] [--url http://127.0.0.1:7860]

Without ``--url`` it starts ``backpain serve`` on a free port and stops it at the end. Two modes:

- typing: each user waits a random 3-10 s before each question, as people do;
- saturation: each user sends the next question as soon as the last is answered.

For each mode it prints requests, errors, p50 and p95 latency (seconds, as the user waits for
the whole reply), throughput, and the CPU time per request of the server and of the load
generator, which runs on the same machine and shares its CPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    mode: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = float("nan")  # CPU seconds the serving process used during the run
    client_cpu: float = 0.0  # CPU seconds the load generator (this process) used

    def line(self) -> str:
        lat = sorted(self.latencies)
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")  # noqa: E731
        return (f"{self.mode:10s} requests {len(lat) + len(self.errors):4d}  errors {len(self.errors):3d}  "
                f"p50 {p(0.50):.3f}s  p95 {p(0.95):.3f}s  throughput {len(lat) / self.seconds:.1f} req/s "
                f"over {self.seconds:.1f}s\n{'':10s} CPU per request: server {self.server_cpu / max(1, len(lat)) * 1000:.0f} ms, "
                f"load generator {self.client_cpu / max(1, len(lat)) * 1000:.0f} ms")


def questions() -> list[str]:
    """Everyday questions from the dev eval sets (answers, declines and red flags alike)."""
    out = []
    for path in [ROOT / "evals" / "qa.jsonl", ROOT / "evals" / "scope.jsonl", ROOT / "evals" / "safety.jsonl"]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                text = row.get("question") or row.get("message") or ""
                if text.strip():
                    out.append(text)
    return out


def _cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (Linux /proc); NaN when unknown (a server given by --url)."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url: str, users: int, per_user: int, pause: tuple[float, float] | None, pool: list[str],
        server_pid: int | None = None) -> Run:
    from gradio_client import Client

    result = Run("typing" if pause else "saturation")
    # gradio_client hands ssl_verify to a new httpx client on every call; True makes each one load the
    # CA bundle (about 35 ms of CPU a request), which plain http never uses.
    tls = url.startswith("https://")
    clients = [Client(url, verbose=False, ssl_verify=tls) for _ in range(users)]  # connected before the clock starts
    lock = threading.Lock()
    start = threading.Barrier(users + 1)

    def user(i: int) -> None:
        rng = random.Random(i)
        start.wait()
        for _ in range(per_user):
            if pause:
                time.sleep(rng.uniform(*pause))
            q = rng.choice(pool)
            t0 = time.perf_counter()
            try:
                got = clients[i].predict(q, [], api_name="/ask")
                ok = isinstance(got, dict) and "kind" in got
                with lock:
                    (result.latencies.append(time.perf_counter() - t0) if ok else result.errors.append(repr(got)[:200]))
            except Exception as exc:  # counted, not raised: the figure is the point
                with lock:
                    result.errors.append(f"{type(exc).__name__}: {exc}"[:200])

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    cpu0, own0 = _cpu_seconds(server_pid), time.process_time()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - t0
    result.server_cpu = _cpu_seconds(server_pid) - cpu0
    result.client_cpu = time.process_time() - own0
    for c in clients:
        c.close()
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int) -> subprocess.Popen:
    import urllib.request

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("backpain serve exited before it answered")
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("backpain serve did not start in 180 s")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--questions", type=int, default=4, help="questions per user in each mode")
    parser.add_argument("--url", help="a page already served (default: start one)")
    parser.add_argument("--modes", default="typing,saturation")
    args = parser.parse_args()
    server = None
    url = args.url
    if not url:
        port = _free_port()
        server = _serve(port)
        url = f"http://127.0.0.1:{port}/"
    try:
        pool = questions()
        print(f"{args.users} users x {args.questions} questions against {url} ({os.cpu_count()} CPUs)")
        for mode in args.modes.split(","):
            r = run(url, args.users, args.questions, (3.0, 10.0) if mode == "typing" else None, pool,
                    server.pid if server else None)
            print(r.line(), flush=True)
            if r.errors:
                print("  first errors:", *sorted(set(r.errors))[:3], sep="\n  ")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
