"""Engine set-up and migrations.

SQLite (the default) is tuned for several writers, threads and processes alike: WAL (readers never block the
writer), ``synchronous=FULL`` (a committed label survives a power cut), foreign keys on, a busy timeout, and
write transactions opened with ``BEGIN IMMEDIATE`` so two writers queue on the lock instead of one failing
with "database is locked" when it upgrades a read to a write. PostgreSQL (a lab server:
``postgresql+psycopg://...``) gets the same rule: a write transaction first takes one transaction-scoped advisory
lock, so writers queue exactly as on SQLite and the store's check-then-insert steps (content-hash dedup,
submission ids, the migration itself) never race, while readers are never blocked."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10
# The PostgreSQL advisory lock every write transaction holds (any constant unique to this app).
PG_WRITE_LOCK = 0x48495354  # "HIST"


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy (the "begin" event below) issue BEGIN itself; pysqlite's implicit transactions would
        # start deferred ones at the first write.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # first, so the next pragmas wait too
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'DEFERRED')}")


def _postgres_events(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("pg_write_lock"):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and the settings above."""
    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        # An unreachable server fails in seconds with its reason instead of hanging the request (libpq waits forever).
        engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        _postgres_events(engine)
        return engine
    if u.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if u.database and u.database != ":memory:":
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    _sqlite_events(engine)
    return engine


def writer(engine: Engine) -> Engine:
    """The engine for write transactions (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the write lock)."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="IMMEDIATE")
    if engine.dialect.name == "postgresql":
        return engine.execution_options(pg_write_lock=True)
    return engine


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration. Cheap when it is current; otherwise run under the write lock,
    where alembic re-reads the version, so processes opening a new database at once do not race."""
    if current_revision(engine) == head_revision():
        return
    cfg = _config()
    with writer(engine).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
