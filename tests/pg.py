"""A throw-away PostgreSQL cluster for tests (no pytest needed).

    with PostgresCluster() as pg:              # initdb + pg_ctl start, 0.8-1.5 s
        url = pg.url                           # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
        other = pg.create_database("crm_x")    # same URL, other database
    # stopped, and its directory removed

The cluster lives in a fresh temporary directory, listens on a free loopback port (and a Unix
socket in that directory), trusts every local connection, and runs with fsync off: data is meant
to be thrown away. As root, initdb and pg_ctl run as the ``postgres`` user (initdb refuses root);
otherwise they run as the current user.

No cluster outlives the process that started it:
- ``stop()`` (or leaving the ``with`` block) stops it and removes its directory;
- an ``atexit`` hook stops any cluster still running at interpreter exit;
- a watchdog (a small ``sh`` in its own session, reading a pipe from this process) shuts the
  postmaster down and removes the directory when this process dies in any way, SIGKILL included.
"""
from __future__ import annotations

import atexit
import glob
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

__all__ = ["PostgresCluster", "PostgresError", "find_bindir", "available"]

SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}

# Runs in its own session; its stdin is a pipe whose only writer is the test process. `cat`
# returns when that process has gone (normally or killed). If the directory still exists, the
# postmaster is shut down (SIGQUIT: "immediate") and the directory removed. The postmaster may
# still be on its way up (the owner was killed during pg_ctl start), so a missing pid file is
# looked for again for up to 3 s. After a normal stop() the directory is gone: nothing to do.
_WATCHDOG = r"""
cat >/dev/null 2>&1
dir=$1
case $dir in */pgtest-*) ;; *) exit 0 ;; esac
tries=0
while [ -d "$dir" ] && [ "$tries" -lt 30 ]; do
  pid=$(sed -n 1p "$dir/data/postmaster.pid" 2>/dev/null) || pid=
  case $pid in
    ''|*[!0-9]*) tries=$((tries + 1)); sleep 0.1 ;;
    *) kill -QUIT "$pid" 2>/dev/null
       n=0
       while [ -e "$dir/data/postmaster.pid" ] && kill -0 "$pid" 2>/dev/null; do
         n=$((n + 1))
         if [ "$n" -gt 600 ]; then kill -KILL "$pid" 2>/dev/null; break; fi
         sleep 0.05
       done
       break ;;
  esac
done
rm -rf "$dir"
"""

_STOP_SIGNALS = {"immediate": signal.SIGQUIT, "fast": signal.SIGINT, "smart": signal.SIGTERM}

_live: set["PostgresCluster"] = set()
_live_lock = threading.Lock()


class PostgresError(RuntimeError):
    """The cluster could not be created, started or stopped."""


def _version_key(path: str) -> tuple:
    # /usr/lib/postgresql/15/bin -> (15,); 9.6 -> (9, 6)
    name = os.path.basename(os.path.dirname(path))
    return tuple(int(p) for p in re.findall(r"\d+", name)) or (0,)


def find_bindir() -> str:
    """The folder holding initdb and pg_ctl: $PG_BINDIR, `pg_config --bindir`, the newest
    /usr/lib/postgresql/*/bin, or wherever initdb is on PATH."""
    candidates = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
            if out:
                candidates.append(out)
        except (OSError, subprocess.SubprocessError):
            pass
    # On Debian pg_config comes with libpq-dev and may name a version whose server is not
    # installed, so check each candidate and fall back to the newest installed server.
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(os.path.dirname(initdb))
    for d in candidates:
        if all(os.access(os.path.join(d, exe), os.X_OK) for exe in ("initdb", "pg_ctl")):
            return d
    raise PostgresError("PostgreSQL server binaries not found (initdb, pg_ctl); "
                        "install them with: apt-get install postgresql")


def available() -> bool:
    try:
        find_bindir()
    except PostgresError:
        return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _traversable(path: str, uid: int, gids: set[int]) -> bool:
    """Can user `uid` (groups `gids`) enter every folder from / down to `path`?"""
    path = os.path.realpath(path)
    while True:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if st.st_uid == uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in gids:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _alive(pid: int) -> bool:
    """Is `pid` running? A zombie (exited, not yet reaped by its parent, which for a
    postmaster is init) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _shutdown_postmaster(data: str, sig: int, timeout: float = 30) -> None:
    """Signal the postmaster of `data` (SIGQUIT immediate, SIGINT fast, SIGTERM smart, as
    pg_ctl does) and wait for it to exit; SIGKILL after `timeout` seconds."""
    pidfile = os.path.join(data, "postmaster.pid")
    try:
        with open(pidfile) as f:
            pid = int(f.readline())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, sig)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and os.path.exists(pidfile):
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            break
        time.sleep(0.005)
    # The pid file goes just before the process exits: give it a moment to release the port.
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.005)


class PostgresCluster:
    """One throw-away cluster. ``start()``, use ``url`` / ``conninfo``, ``stop()``."""

    def __init__(self, *, bindir: str | None = None, base_dir: str | None = None,
                 locale: str = "C.UTF-8", settings: dict[str, str] | None = None,
                 start_timeout: int = 60):
        self.bindir = bindir
        self.base_dir = base_dir
        self.locale = locale
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.directory: str | None = None
        self.start_seconds: float | None = None
        self.stop_seconds: float | None = None
        self._owner_pid: int | None = None
        self._watchdog: subprocess.Popen | None = None
        self._run_as: dict = {}

    # ----------------------------------------------------------------- public API
    @property
    def running(self) -> bool:
        return self.directory is not None and self._owner_pid == os.getpid()

    @property
    def data_dir(self) -> str:
        self._require_running()
        return os.path.join(self.directory, "data")

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        self._require_running()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    @property
    def conninfo(self) -> str:
        """libpq connection string for psycopg.connect()."""
        return self.conninfo_for("postgres")

    def conninfo_for(self, dbname: str) -> str:
        self._require_running()
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """CREATE DATABASE `name` (optionally from `template`); returns its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(query)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))

    def start(self) -> "PostgresCluster":
        if self.running:
            return self
        t0 = time.perf_counter()
        self.bindir = self.bindir or find_bindir()
        self._setup_user()
        self._make_directory()
        self._owner_pid = os.getpid()
        with _live_lock:
            _live.add(self)
        try:
            self._start_watchdog()
            self._initdb()
            self._pg_ctl_start()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - t0
        return self

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server and remove its directory. `mode` is pg_ctl's: immediate (the
        default: the data is thrown away anyway), fast or smart. Safe to call twice; does
        nothing in a forked child."""
        sig = _STOP_SIGNALS[mode]  # KeyError for an unknown mode, before anything happens
        if self.directory is None or self._owner_pid != os.getpid():
            return
        t0 = time.perf_counter()
        directory = self.directory
        try:
            _shutdown_postmaster(os.path.join(directory, "data"), sig)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            self.directory = None
            with _live_lock:
                _live.discard(self)
            self._stop_watchdog()
            self.stop_seconds = time.perf_counter() - t0

    def log(self) -> str:
        """The server log so far (for failure messages)."""
        try:
            with open(os.path.join(self.directory or "", "log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self) -> "PostgresCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port {self.port} in {self.directory}" if self.running else "stopped"
        return f"<PostgresCluster {state}>"

    # ----------------------------------------------------------------- internals
    def _require_running(self) -> None:
        if not self.running:
            raise PostgresError("the cluster is not running; call start() first")

    def _exe(self, name: str) -> str:
        return os.path.join(self.bindir, name)

    def _setup_user(self) -> None:
        """As root, run the server tools as postgres (subprocess user=/group=: the same as
        `runuser -u postgres --`, without PAM or an extra process)."""
        if os.geteuid() != 0:
            self._run_as = {}
            self._uid, self._gids = os.geteuid(), set(os.getgroups()) | {os.getegid()}
            return
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresError("running as root but there is no 'postgres' user "
                                "(initdb refuses to run as root)") from None
        groups = os.getgrouplist("postgres", pw.pw_gid)
        self._run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": groups}
        self._uid, self._gids = pw.pw_uid, set(groups)

    def _make_directory(self) -> None:
        base = self.base_dir or tempfile.gettempdir()
        # The socket path (dir + "/.s.PGSQL.NNNNN") must fit in sun_path (107 bytes), and the
        # postgres user must be able to reach the directory.
        if len(base) > 60 or not _traversable(base, self._uid, self._gids):
            if self.base_dir:
                raise PostgresError(f"{base}: too long a path, or not traversable by uid "
                                    f"{self._uid}")
            base = "/tmp"
        d = tempfile.mkdtemp(prefix="pgtest-", dir=base)
        if self._run_as:
            os.chown(d, self._run_as["user"], self._run_as["group"])
        self.directory = d

    def _run(self, cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC")
        if self._run_as:
            env.update(HOME=self.directory, USER="postgres", LOGNAME="postgres")
        r = subprocess.run(cmd, cwd=self.directory, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace", **self._run_as)
        if check and r.returncode != 0:
            raise PostgresError(f"{shlex.join(cmd)} failed with exit {r.returncode}:\n"
                                f"{r.stdout}{r.stderr}\n--- server log ---\n{self.log()[-4000:]}")
        return r

    def _initdb(self) -> None:
        self._run([self._exe("initdb"), "-D", os.path.join(self.directory, "data"),
                   "-A", "trust", "-U", "postgres", "-E", "UTF8", f"--locale={self.locale}",
                   "--no-sync"])

    def _pg_ctl_start(self) -> None:
        data = os.path.join(self.directory, "data")
        settings = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in self.settings.items())
        last_error = None
        for _ in range(5):  # the free port may be taken between probing and binding
            self.port = _free_port()
            opts = f"-p {self.port} -k {shlex.quote(self.directory)} {settings}"
            r = self._run([self._exe("pg_ctl"), "-D", data, "-l",
                           os.path.join(self.directory, "log"), "-w",
                           "-t", str(self.start_timeout), "-o", opts, "start"], check=False)
            if r.returncode == 0:
                self._wait_for_port()
                return
            last_error = f"{r.stdout}{r.stderr}"
            log = self.log()
            _shutdown_postmaster(data, signal.SIGQUIT)
            if not re.search(r"could not bind|Address already in use|could not create any "
                             r"TCP/IP sockets", log):
                break
        raise PostgresError(f"pg_ctl start failed:\n{last_error}\n--- server log ---\n"
                            f"{self.log()[-4000:]}")

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise PostgresError(f"server started but port {self.port} does not answer")
                time.sleep(0.02)

    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen(
            ["/bin/sh", "-c", _WATCHDOG, "pg-watchdog", self.directory],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)

    def _stop_watchdog(self) -> None:
        w, self._watchdog = self._watchdog, None
        if w is None:
            return
        try:
            w.stdin.close()  # EOF: the watchdog finds nothing left to clean and exits
            w.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            w.kill()
            w.wait()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        clusters = list(_live)
    for c in clusters:
        try:
            c.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
