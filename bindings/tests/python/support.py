"""Helpers for the Python tests of the bindings (standard library only).

A real sync server on a temporary database, for tests that need one:

    from support import TestServer

    with TestServer() as server:                      # temporary directory + database
        server.add_grid("440703001001001", "X")       # admin commands: before start()
        code = server.add_worker("w1", "full_time_worker", grids=["440703001001001"])
        server.start()                                # returns once /healthz answers 200
        ...  server.url  ...                          # "http://127.0.0.1:PORT"
        server.stop()                                 # Ctrl-C (SIGINT); may start() again:
        server.start()                                # same database, same port, same url
    # leaving the block stops the server and deletes the directory

The binary is target/debug/wangge-server, or $WANGGE_SERVER. The server runs in its own
directory with WANGGE_* variables removed, so no wangge-server.toml or environment of
the caller's changes what it serves. Its output goes to `server.log_path`, which the
errors quote.
"""

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

_SERVING = re.compile(r"serving sync protocol v\d+ on (http://\S+)")
_ENROLLMENT_CODE = re.compile(r"enrollment code for .*: (\S+)")
# Servers still running when the interpreter exits (a test that forgot stop()) are stopped.
_RUNNING = weakref.WeakSet()
atexit.register(lambda: [server.stop() for server in list(_RUNNING)])
# Direct connections only: a proxy from the environment must not see 127.0.0.1.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def server_binary():
    """The wangge-server binary the tests run ($WANGGE_SERVER or the debug build)."""
    return Path(os.environ.get("WANGGE_SERVER") or REPO / "target" / "debug" / "wangge-server")


class TestServer:
    """A wangge-server on a database of its own (see the module's documentation)."""

    __test__ = False  # not a test case, whatever a runner guesses from the name

    def __init__(self, binary=None):
        self.binary = Path(binary) if binary else server_binary()
        if not self.binary.is_file():
            raise FileNotFoundError(f"{self.binary}: no server binary (run scripts/bindings first)")
        self.dir = Path(tempfile.mkdtemp(prefix="wangge-server-"))
        self.db = self.dir / "server.db"
        self.log_path = self.dir / "server.log"
        self.url = None
        self._listen = "127.0.0.1:0"
        self._process = None
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("WANGGE_")}

    # --- preparing the database (before start) -----------------------------------------

    def admin(self, *args):
        """Runs `wangge-server --db <db> ARGS...` and returns its standard output."""
        if self._process is not None:
            raise RuntimeError("admin commands run before start() (or after stop())")
        done = subprocess.run(
            [str(self.binary), "--db", str(self.db), *map(str, args)],
            cwd=self.dir, env=self._env, capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"wangge-server {' '.join(map(str, args))} failed "
                               f"({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def add_grid(self, code, name, kind=None):
        """Creates the grid `code` (its documents included)."""
        self.admin("add-grid", "--code", code, "--name", name, *(("--kind", kind) if kind else ()))

    def add_worker(self, person, role, grids=(), department=None):
        """Creates the worker and returns a one-time enrollment code for a device."""
        args = ["add-worker", "--person", person, "--role", role]
        for grid in grids:
            args += ["--grid", grid]
        if department:
            args += ["--department", department]
        output = self.admin(*args)
        match = _ENROLLMENT_CODE.search(output)
        if not match:
            raise RuntimeError(f"no enrollment code in {output!r}")
        return match.group(1)

    # --- serving --------------------------------------------------------------------------

    def start(self, timeout=30.0):
        """Starts `serve` and returns self once GET /healthz answers 200 (polled)."""
        if self._process is not None:
            raise RuntimeError("the server is running already")
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [str(self.binary), "--db", str(self.db), "serve", "--listen", self._listen],
                cwd=self.dir, env=self._env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        _RUNNING.add(self)
        deadline = time.monotonic() + timeout
        url = None
        while True:
            if self._process.poll() is not None:
                status = self._process.returncode
                self._process = None
                raise RuntimeError(f"wangge-server exited ({status}) before answering: {self.log(offset)}")
            if url is None:
                match = _SERVING.search(self.log(offset))
                url = match.group(1) if match else None
            if url is not None and _healthy(url):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"wangge-server did not answer /healthz within {timeout}s: {self.log(offset)}")
            time.sleep(0.01)
        self.url = url
        self._listen = url.removeprefix("http://")  # a restart keeps the port, so the url stays valid
        return self

    def stop(self, timeout=10.0):
        """Stops the server: Ctrl-C (it finishes requests in flight), killed after `timeout`."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self):
        """Stops the server and deletes its directory (database and log)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self):
        return self._process is not None and self._process.poll() is None

    def log(self, offset=0):
        """The server's output so far (from byte `offset`)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            process.kill()


def _healthy(url):
    try:
        with _HTTP.open(f"{url}/healthz", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def healthz_status(url):
    """The status of GET url/healthz, or None when nothing answers (for tests)."""
    try:
        with _HTTP.open(f"{url}/healthz", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None
