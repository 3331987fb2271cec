"""Load test of the Gradio app: concurrent ``/analyze`` calls and the server's memory across rounds.

    python bench/app_load.py [--calls 20] [--rounds 2] [--explain fast] [--preset tiny-random]

Starts ``python app.py`` in a subprocess on a free local port, waits until it answers, then runs
ROUNDS rounds of CALLS concurrent ``/analyze`` requests (``gradio_client`` jobs submitted at once;
each call uses a different JPEG quality so no two requests are the same). Every call must succeed
with a P(fake) on the 0.1 grid. Prints the server process's RSS (psutil) before and after each
round, the growth between rounds, and the latencies. Exit code 1 if a call failed or the RSS grew
by more than --max-growth percent from the end of round 1 to the end of the last round.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = {round(0.1 * i, 1) for i in range(11)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with code {proc.returncode} before serving")
        try:
            urllib.request.urlopen(url + "config", timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the app did not answer at {url} within {timeout:.0f} s")


def _rss_mb(proc) -> float:
    return proc.memory_info().rss / 2**20


def _round(client, image: str, *, calls: int, explain: str, offset: int) -> tuple[list[float], list[str]]:
    from gradio_client import handle_file

    start = time.perf_counter()
    jobs = []
    for i in range(calls):
        quality = 20 + (offset + i) % 80  # a different degradation per call
        jobs.append(client.submit(handle_file(image), "none", quality, 0, 1, 0, 0, 1, 0, 0, explain, api_name="/analyze"))
    latencies, failures = [], []
    for i, job in enumerate(jobs):
        try:
            out = job.result(timeout=600)
            report = out[-1]
            if report["prob_fake"] not in GRID or len(report["streams"]) != 3:
                failures.append(f"call {i}: unexpected report {report['prob_fake']!r}")
        except Exception as exc:  # a bench reports every failure instead of stopping at the first
            failures.append(f"call {i}: {type(exc).__name__}: {exc}")
        latencies.append(time.perf_counter() - start)
    return latencies, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="concurrent /analyze calls per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--explain", choices=["none", "fast", "exact"], default="fast")
    parser.add_argument("--preset", default="tiny-random")
    parser.add_argument("--image", default=str(ROOT / "examples" / "astronaut.jpg"))
    parser.add_argument("--max-growth", type=float, default=5.0, help="allowed RSS growth between rounds, percent")
    args = parser.parse_args(argv)

    import psutil
    from gradio_client import Client, handle_file

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    cmd = [sys.executable, str(ROOT / "app.py"), "--preset", args.preset, "--host", "127.0.0.1", "--port", str(port)]
    log = tempfile.NamedTemporaryFile("w+", prefix="app_load_", suffix=".log", delete=False)
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.perf_counter()
        _wait_until_up(url, server, timeout=180)
        print(f"server up in {time.perf_counter() - t0:.1f} s (pid {server.pid}, preset {args.preset}, explain {args.explain})")
        proc = psutil.Process(server.pid)
        started = _rss_mb(proc)
        client = Client(url, verbose=False)
        # one warm-up call: first-use allocations (MTCNN, matplotlib fonts) are not a leak
        client.predict(handle_file(args.image), "none", 100, 0, 1, 0, 0, 1, 0, 0, args.explain, api_name="/analyze")
        rows = [("after start", started, None, None), ("after warm-up", _rss_mb(proc), None, None)]
        all_failures = []
        for r in range(args.rounds):
            latencies, failures = _round(client, args.image, calls=args.calls, explain=args.explain, offset=r * args.calls)
            all_failures += failures
            rows.append((f"after round {r + 1}", _rss_mb(proc), max(latencies), statistics.median(latencies)))
        print(f"\n{'':16} {'RSS MiB':>9} {'round s':>9} {'median done s':>14}")
        for name, rss, wall, med in rows:
            print(f"{name:16} {rss:9.1f} {'' if wall is None else f'{wall:9.1f}':>9} {'' if med is None else f'{med:14.1f}':>14}")
        growth = 100.0 * (rows[-1][1] - rows[2][1]) / rows[2][1]
        print(f"\n{args.rounds * args.calls} calls, {len(all_failures)} failed; RSS growth round 1 -> {args.rounds}: {growth:+.2f}%")
        for f in all_failures:
            print("  FAILED", f)
        client.close() if hasattr(client, "close") else None
        return 1 if all_failures or growth > args.max_growth else 0
    except BaseException:
        log.seek(0)
        print("server log (tail):\n" + "".join(log.readlines()[-30:]), file=sys.stderr)
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        os.unlink(log.name)


if __name__ == "__main__":
    raise SystemExit(main())
