"""The throw-away PostgreSQL helper (tests/pg.py): starts, answers, cleans up after itself."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import psycopg
import pytest
import sqlalchemy

from tests.pg import PostgresCluster, available

pytestmark = pytest.mark.skipif(not available(), reason="PostgreSQL server not installed")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


def test_start_query_stop_removes_everything():
    cluster = PostgresCluster()
    t0 = time.perf_counter()
    with cluster:
        started = time.perf_counter() - t0
        assert cluster.url == f"postgresql+psycopg://postgres@127.0.0.1:{cluster.port}/postgres"
        directory = cluster.directory
        with open(os.path.join(cluster.data_dir, "postmaster.pid")) as f:
            postmaster = int(f.readline())

        with psycopg.connect(cluster.conninfo) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.execute("SHOW fsync").fetchone() == ("off",)

        url = cluster.create_database("crm_test")
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT current_database()")).scalar() == "crm_test"
        engine.dispose()
        t1 = time.perf_counter()
    stopped = time.perf_counter() - t1

    print(f"\nPostgreSQL cluster: start {started:.2f} s, stop {stopped:.2f} s")
    assert not cluster.running
    assert not os.path.exists(directory)
    assert _gone(postmaster)
    cluster.stop()  # idempotent


def test_killed_owner_leaves_no_postmaster():
    """SIGKILL skips atexit: the watchdog must still shut the server down."""
    code = textwrap.dedent("""
        import os, sys, time
        from tests.pg import PostgresCluster
        c = PostgresCluster().start()
        with open(os.path.join(c.data_dir, "postmaster.pid")) as f:
            print(c.directory, int(f.readline()), flush=True)
        time.sleep(60)
    """)
    with subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True, env={**os.environ, "PYTHONPATH": ROOT}) as child:
        try:
            line = child.stdout.readline()
        finally:
            child.send_signal(signal.SIGKILL)
    assert line, "the child process could not start a cluster"
    directory, postmaster = line.split()
    assert _gone(int(postmaster))
    deadline = time.monotonic() + 10
    while os.path.exists(directory) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(directory)
