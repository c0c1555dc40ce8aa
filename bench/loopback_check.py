"""Check that the scripted server is not the bottleneck of an end-to-end benchmark.

With C keep-alive connections each waiting ``latency`` seconds per reply, a server that adds no
overhead serves C / latency requests per second. This starts :class:`ScriptedServer` in-process,
drives it with ``wrk`` when installed (``apt-get install wrk``) or else a raw-socket asyncio load
generator, and prints achieved vs ideal req/s.

    .venv/bin/python bench/loopback_check.py --connections 64 --latency 0.05 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from examharness.testing import ScriptedServer

BODY = json.dumps({"model": "bench", "messages": [
    {"role": "system", "content": "Answer with the letter of the correct option."},
    {"role": "user", "content": "Largest planet? (A) Mars (B) Jupiter (C) Venus (D) Earth"},
]})


def run_wrk(url: str, connections: int, threads: int, duration: float) -> float:
    """Requests/sec as wrk reports it, posting :data:`BODY` on every request."""
    script = ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
              f"wrk.body = {json.dumps(BODY)}\n")
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "post.lua"
        lua.write_text(script, encoding="utf-8")
        out = subprocess.run(
            ["wrk", "-c", str(connections), "-t", str(threads), "-d", f"{duration:g}s",
             "-s", str(lua), f"{url}/chat/completions"],
            capture_output=True, text=True, check=True).stdout
    print(out.rstrip())
    found = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"could not read Requests/sec from wrk output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if non_2xx is not None:
        raise RuntimeError(f"{non_2xx[1]} error responses")
    return float(found[1])


async def _one_connection(host: str, port: int, deadline: float) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    body = BODY.encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    done = 0
    while time.perf_counter() < deadline:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode("latin-1").splitlines()[0])
        length = re.search(rb"Content-Length: (\d+)", head)
        await reader.readexactly(int(length[1]) if length else 0)
        done += 1
    writer.close()
    return done


async def run_python(host: str, port: int, connections: int, duration: float) -> float:
    """A minimal keep-alive load generator for machines without wrk (shares this process's GIL)."""
    started = time.perf_counter()
    counts = await asyncio.gather(*(_one_connection(host, port, started + duration)
                                    for _ in range(connections)))
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    with ScriptedServer(latency=args.latency) as srv:
        if use_wrk:
            achieved = run_wrk(srv.base_url, args.connections, args.threads, args.duration)
        else:
            achieved = asyncio.run(run_python("127.0.0.1", srv.port, args.connections,
                                              args.duration))
    tool = "wrk" if use_wrk else "python loadgen"
    if args.latency > 0:
        ideal = args.connections / args.latency
        print(f"{tool}: {achieved:.0f} req/s achieved, ideal {ideal:.0f} req/s "
              f"({args.connections} connections / {args.latency:g} s) = {achieved / ideal:.1%}")
    else:
        print(f"{tool}: {achieved:.0f} req/s at latency 0 (server throughput ceiling)")


if __name__ == "__main__":
    main()
