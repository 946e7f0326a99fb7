//! The embedded store: the same `(pk, sk) -> item` model as the DynamoDB table, in one SQLite
//! file (WAL, `synchronous = FULL`).
//!
//! Writes (put, delete, transact, feed acks) go over a channel to one writer thread that owns
//! the write connection and group-commits: it takes every queued request (up to
//! [`MAX_GROUP`]), runs each under its own `SAVEPOINT` inside one `BEGIN IMMEDIATE`
//! transaction (a request whose condition fails rolls back only its savepoint), commits once
//! and only then replies to each. One fsync serves the whole group, and a reply means durable.
//!
//! Reads (get, query, feed reads) run inline on the calling task's thread, on a small pool of
//! reader connections: WAL lets them read committed data beside the writer, and a read that
//! starts after a write's reply sees that write.
//!
//! With [`SqliteStore::with_feed`], every put that inserts a new item whose sort key starts with
//! the feed's prefix also appends the item to the `feed` table, in the same savepoint: the
//! change feed of [`crate::ports::feed`], read through [`SqliteStore::feed`].
use crate::ports::feed::{Feed, FeedRecord};
use crate::ports::store::{
    Condition, Item, Page, Query, Store, StoreError, WriteOp, validate_transaction,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, mpsc};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// The most requests one commit serves: bounds how long the first of them waits for the others
/// and how long an in-memory store's readers wait for the shared connection.
pub const MAX_GROUP: usize = 64;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    v INTEGER NOT NULL,
    ttl INTEGER,
    gsi1pk TEXT,
    gsi1sk TEXT,
    attrs TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk) WHERE gsi1pk IS NOT NULL;
CREATE TABLE IF NOT EXISTS feed (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    v INTEGER NOT NULL,
    ttl INTEGER,
    gsi1pk TEXT,
    gsi1sk TEXT,
    attrs TEXT NOT NULL
);
";

/// The item columns in [`read_item`]'s order, as a literal so the statements below are constants
/// (no formatting per call, one `prepare_cached` key each).
macro_rules! columns {
    () => {
        "pk, sk, v, ttl, gsi1pk, gsi1sk, attrs"
    };
}

pub(crate) const COLUMNS: &str = columns!();

const GET_ITEM: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM items WHERE pk = ?1 AND sk = ?2"
);
const GET_VERSION: &str = "SELECT v FROM items WHERE pk = ?1 AND sk = ?2";
const PUT_ITEM: &str = concat!(
    "INSERT OR REPLACE INTO items (",
    columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
);
const DELETE_ITEM: &str = "DELETE FROM items WHERE pk = ?1 AND sk = ?2";
const SWEEP_EXPIRED: &str = "DELETE FROM items WHERE ttl IS NOT NULL AND ttl < ?1";
const QUERY_ASC: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM items WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2 \
     AND (?3 IS NULL OR sk > ?3) ORDER BY sk ASC LIMIT ?4"
);
const SCAN: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM items WHERE ?1 IS NULL OR pk > ?1 OR (pk = ?1 AND sk > ?2) ORDER BY pk, sk LIMIT ?3"
);
const QUERY_DESC: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM items WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2 \
     AND (?3 IS NULL OR sk < ?3) ORDER BY sk DESC LIMIT ?4"
);
const FEED_APPEND: &str = concat!(
    "INSERT INTO feed (",
    columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
);
const FEED_READ: &str = concat!(
    "SELECT ",
    columns!(),
    ", position FROM feed ORDER BY position ASC LIMIT ?1"
);
const FEED_ACK: &str = "DELETE FROM feed WHERE position <= ?1";

/// A handle on the store; clones share the database, the writer thread and the readers.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// A handle on the store's change feed (see [`SqliteStore::with_feed`]); it keeps the store open.
#[derive(Clone)]
pub struct SqliteFeed {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` only while dropping: closing the channel is what ends the writer thread.
    to_writer: Option<mpsc::Sender<Msg>>,
    writer: Option<JoinHandle<()>>,
    readers: Vec<Arc<Mutex<Connection>>>,
    next_reader: AtomicUsize,
    /// Commits made by the writer (one per group), shared with it.
    commits: Arc<AtomicU64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close the channel, then wait for the writer to drain it and close its connection, so a
        // dropped store has let go of the file (WAL checkpointed) when drop returns: a reopen or
        // a read-only open of the same file right after sees everything. The wait is one group
        // at most, since no handle is left to queue more.
        drop(self.to_writer.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// A message to the writer thread.
enum Msg {
    Write(Job),
    /// Turns the feed on (or changes its prefix) for every write queued after it.
    Feed(String),
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Outcome>,
}

/// What a write returns: the item a delete removed, `None` otherwise.
type Outcome = Result<Option<Item>, StoreError>;

enum Write {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        pk: String,
        sk: String,
        condition: Condition,
    },
    Transact(Vec<WriteOp>),
    Ack(u64),
    /// Deletes the items whose `ttl` is before this epoch second.
    Sweep(i64),
}

impl SqliteStore {
    /// Opens (creating if needed) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = Connection::open(path).map_err(unavailable)?;
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
            )
            .map_err(unavailable)?;
        writer.execute_batch(SCHEMA).map_err(unavailable)?;
        // Opened after the schema exists, so their statements prepare.
        let readers = (0..reader_count())
            .map(|_| {
                let conn = Connection::open(path).map_err(unavailable)?;
                conn.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")
                    .map_err(unavailable)?;
                Ok(Arc::new(Mutex::new(conn)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Self::start(Arc::new(Mutex::new(writer)), readers)
    }

    /// A private in-memory store, for tests; each call makes a distinct database.
    pub fn in_memory() -> Result<Self, StoreError> {
        // One connection serves the writer and the readers. A private in-memory database lives
        // in its connection, so it is distinct per call and needs no naming; sharing it between
        // connections would take a shared-cache URI, whose table locks make readers fail with
        // SQLITE_LOCKED beside an open write instead of reading the last commit as WAL does.
        // The writer holds the connection's mutex for a whole group, so readers still see only
        // committed data; without fsyncs a group is short.
        let conn = Connection::open_in_memory().map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        let conn = Arc::new(Mutex::new(conn));
        Self::start(Arc::clone(&conn), vec![conn])
    }

    fn start(
        writer: Arc<Mutex<Connection>>,
        readers: Vec<Arc<Mutex<Connection>>>,
    ) -> Result<Self, StoreError> {
        let (to_writer, from_handles) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&commits);
        let writer = std::thread::Builder::new()
            .name("latchkey-sqlite-writer".into())
            .spawn(move || run_writer(&writer, &from_handles, &counted))
            .map_err(|e| StoreError::Unavailable(format!("sqlite writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                to_writer: Some(to_writer),
                writer: Some(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                commits,
            }),
        })
    }

    /// Deletes every item whose `ttl` (epoch seconds) is before `now`, as DynamoDB's TTL does
    /// on the table: abandoned ceremonies, challenges, counters and failure markers do not
    /// stay for ever. Readers check expiry themselves (`ports::store`), on both stores, so an
    /// item between its expiry and the next sweep is already treated as gone.
    /// `latchkey-local` sweeps every minute (`latchkey_local::spawn_sweeper`).
    pub async fn sweep_expired(&self, now: i64) -> Result<(), StoreError> {
        self.inner.write(Write::Sweep(now)).await.map(|_| ())
    }

    /// Turns the change feed on: from now on, every put (alone or in a transaction) that
    /// inserts an item whose sort key starts with `sk_prefix` (none was stored under its key)
    /// records it in the feed, in the same SQLite transaction. Replacements, deletes and counts
    /// record nothing. Applies to every handle on this store.
    pub fn with_feed(self, sk_prefix: impl Into<String>) -> Self {
        // Queued like a write, so it applies to every write queued after it. If the writer has
        // stopped, every write fails anyway and there is nothing to record.
        if let Some(to_writer) = &self.inner.to_writer {
            let _ = to_writer.send(Msg::Feed(sk_prefix.into()));
        }
        self
    }

    /// How many groups the writer has run since the store opened (one commit each): against the
    /// number of writes, how well they were grouped.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// The change feed of this store's database (empty unless [`Self::with_feed`] was called,
    /// now or by an earlier process on the same file).
    pub fn feed(&self) -> SqliteFeed {
        SqliteFeed {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl Inner {
    /// Sends `write` to the writer thread; the reply comes once its group has committed.
    async fn write(&self, write: Write) -> Outcome {
        let stopped = || StoreError::Unavailable("sqlite writer stopped".into());
        let (reply, replied) = oneshot::channel();
        self.to_writer
            .as_ref()
            .ok_or_else(stopped)?
            .send(Msg::Write(Job { write, reply }))
            .map_err(|_| stopped())?;
        replied.await.map_err(|_| stopped())?
    }

    /// Runs `f` on a reader connection, on the calling thread.
    ///
    /// No `spawn_blocking` on purpose: a point read or a page of at most 1000 items from SQLite's
    /// page cache takes tens of microseconds, less than the hop to the blocking pool and back
    /// (two thread wake-ups, several futex calls). Blocking a tokio worker that briefly is
    /// acceptable; the writer never holds a reader connection, so a read waits only for another
    /// read (or, in memory, for one group).
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % n.max(1);
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(conn) => return f(&conn),
                Err(TryLockError::Poisoned(e)) => return f(&e.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let Some(conn) = self.readers.get(start) else {
            return Err(StoreError::Unavailable("sqlite: no reader".into()));
        };
        f(&lock(conn))
    }
}

/// One reader a core (tokio's default worker count), at least two, at most eight.
fn reader_count() -> usize {
    std::thread::available_parallelism()
        .map_or(2, NonZeroUsize::get)
        .clamp(2, 8)
}

/// A connection's guard, also after a panic elsewhere: SQLite rolls back what a panicking
/// holder left open when the next statement begins, so the connection stays usable.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writer thread: until every handle is gone, takes what is queued and commits it as one
/// group.
fn run_writer(conn: &Mutex<Connection>, queue: &mpsc::Receiver<Msg>, commits: &AtomicU64) {
    let mut feed: Option<String> = None;
    // A feed change that arrived behind a group's writes: it starts the next group.
    let mut carried: Option<Msg> = None;
    loop {
        let Some(first) = carried.take().or_else(|| queue.recv().ok()) else {
            return;
        };
        let guard = lock(conn);
        // Drained after taking the connection, so what queued while an in-memory store's readers
        // held it joins this group.
        let mut group = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Write(job) => group.push(job),
                Msg::Feed(prefix) if group.is_empty() => feed = Some(prefix),
                msg @ Msg::Feed(_) => {
                    carried = Some(msg);
                    break;
                }
            }
            if group.len() < MAX_GROUP {
                next = queue.try_recv().ok();
            }
        }
        if group.is_empty() {
            continue;
        }
        let (writes, replies): (Vec<_>, Vec<_>) =
            group.into_iter().map(|job| (job.write, job.reply)).unzip();
        let outcomes = commit_group(&guard, feed.as_deref(), writes);
        drop(guard);
        commits.fetch_add(1, Ordering::Relaxed);
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // A caller that went away no longer wants its answer; the write stands.
            let _ = reply.send(outcome);
        }
    }
}

/// Runs `writes` in one transaction, each under its own savepoint, and commits once: the outcome
/// of each, in order. When the transaction as a whole fails (begin, a savepoint, the commit),
/// nothing of the group is written and every outcome is [`StoreError::Unavailable`].
fn commit_group(conn: &Connection, feed: Option<&str>, writes: Vec<Write>) -> Vec<Outcome> {
    let n = writes.len();
    let all_failed = |e: StoreError| vec![Err(e); n];
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        return all_failed(e);
    }
    let mut outcomes = Vec::with_capacity(n);
    for write in writes {
        match in_savepoint(conn, |conn| apply(conn, feed, write)) {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                abandon(conn);
                return all_failed(e);
            }
        }
    }
    if let Err(e) = exec(conn, "COMMIT") {
        abandon(conn);
        return all_failed(e);
    }
    outcomes
}

/// Runs one request under a savepoint, released when it succeeds and rolled back when it fails:
/// the request's outcome, or an error when the group's transaction itself is broken.
fn in_savepoint(
    conn: &Connection,
    request: impl FnOnce(&Connection) -> Outcome,
) -> Result<Outcome, StoreError> {
    exec(conn, "SAVEPOINT request")?;
    let outcome = request(conn);
    // Some failures (I/O, a full disk) make SQLite roll back the whole transaction itself; what
    // the group did before is gone then, and later requests would run outside any transaction.
    if conn.is_autocommit() {
        return Err(StoreError::Unavailable(
            "sqlite: transaction rolled back".into(),
        ));
    }
    if outcome.is_err() {
        exec(conn, "ROLLBACK TO request")?;
    }
    exec(conn, "RELEASE request")?;
    Ok(outcome)
}

/// Rolls back the group's transaction, when SQLite has not already.
fn abandon(conn: &Connection) {
    if !conn.is_autocommit() {
        // Nothing better to do if this fails too: the connection rolls back when the next
        // BEGIN fails or when it closes, and this group's callers are told it failed.
        let _ = exec(conn, "ROLLBACK");
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(|_| ())
        .map_err(unavailable)
}

fn apply(conn: &Connection, feed: Option<&str>, write: Write) -> Outcome {
    match write {
        Write::Put { item, condition } => put(conn, feed, item, condition).map(|()| None),
        Write::Delete { pk, sk, condition } => delete(conn, pk, sk, condition),
        Write::Transact(ops) => transact(conn, feed, ops).map(|()| None),
        Write::Sweep(now) => conn
            .prepare_cached(SWEEP_EXPIRED)
            .and_then(|mut stmt| stmt.execute(params![now]))
            .map(|_| None)
            .map_err(unavailable),
        Write::Ack(position) => {
            // Positions are SQLite rowids, at most i64::MAX: a larger ack forgets everything.
            let position = i64::try_from(position).unwrap_or(i64::MAX);
            conn.prepare_cached(FEED_ACK)
                .and_then(|mut stmt| stmt.execute(params![position]))
                .map(|_| None)
                .map_err(unavailable)
        }
    }
}

fn put(
    conn: &Connection,
    feed: Option<&str>,
    item: Item,
    condition: Condition,
) -> Result<(), StoreError> {
    let (ok, stored) = check(conn, &item.pk, &item.sk, condition)?;
    if !ok {
        return Err(StoreError::ConditionFailed {
            pk: item.pk,
            sk: item.sk,
        });
    }
    write_item(conn, feed, &item, stored.is_none())
}

fn delete(conn: &Connection, pk: String, sk: String, condition: Condition) -> Outcome {
    let old = get_item(conn, &pk, &sk)?;
    if !holds_for(condition, old.as_ref()) {
        return Err(StoreError::ConditionFailed { pk, sk });
    }
    conn.prepare_cached(DELETE_ITEM)
        .and_then(|mut stmt| stmt.execute(params![pk, sk]))
        .map_err(unavailable)?;
    Ok(old)
}

fn transact(conn: &Connection, feed: Option<&str>, ops: Vec<WriteOp>) -> Result<(), StoreError> {
    // Check every condition first, as DynamoDB does, then write: a failure names the first
    // condition that did not hold, and the caller's savepoint rolls back.
    let mut counted = Vec::new();
    let mut updated = Vec::new();
    let mut inserts = vec![false; ops.len()];
    for (index, op) in ops.iter().enumerate() {
        let (pk, sk) = op.key();
        let failed = || StoreError::TransactionConditionFailed {
            index,
            pk: pk.to_owned(),
            sk: sk.to_owned(),
        };
        if let WriteOp::Count {
            attr, below, ttl, ..
        } = op
        {
            let item = get_item(conn, pk, sk)?;
            let n = item
                .as_ref()
                .and_then(|i| i.attrs.get(attr.as_str()))
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0);
            if n >= *below {
                return Err(failed());
            }
            let next = match item {
                Some(i) => {
                    let v = i.version;
                    i.with(attr, n + 1).with_version(v + 1)
                }
                None => Item::new(pk, sk).with(attr, 1).with_ttl(*ttl),
            };
            counted.push(next);
            continue;
        }
        if let WriteOp::Update { set, condition, .. } = op {
            // Read-modify-write is safe here: the writer thread holds the only write
            // connection, inside this transaction.
            let Some(item) = get_item(conn, pk, sk)? else {
                return Err(failed());
            };
            if !holds_for(*condition, Some(&item)) {
                return Err(failed());
            }
            let v = item.version;
            let mut next = item.with_version(v + 1);
            next.attrs.extend(set.clone());
            updated.push(next);
            continue;
        }
        let (ok, stored) = check(conn, pk, sk, op.condition())?;
        if !ok {
            return Err(failed());
        }
        inserts[index] = stored.is_none();
    }
    for (op, insert) in ops.iter().zip(inserts) {
        match op {
            WriteOp::Put { item, .. } => write_item(conn, feed, item, insert)?,
            WriteOp::Delete { pk, sk, .. } => {
                conn.prepare_cached(DELETE_ITEM)
                    .and_then(|mut stmt| stmt.execute(params![pk, sk]))
                    .map_err(unavailable)?;
            }
            WriteOp::Check { .. } | WriteOp::Count { .. } | WriteOp::Update { .. } => {}
        }
    }
    // Updates change existing items: nothing new for the feed, which carries inserts.
    for item in &updated {
        write_item(conn, None, item, false)?;
    }
    // Counts are not puts: they record nothing in the feed.
    for item in &counted {
        write_item(conn, None, item, false)?;
    }
    Ok(())
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

fn stored_version(conn: &Connection, pk: &str, sk: &str) -> Result<Option<u64>, StoreError> {
    conn.prepare_cached(GET_VERSION)
        .and_then(|mut stmt| {
            stmt.query_row(params![pk, sk], |row| row.get::<_, i64>(0))
                .optional()
        })
        .map(|v| v.map(|v| v as u64))
        .map_err(unavailable)
}

/// Whether `condition` holds of what is stored under the key, and the stored version. Reads
/// only the version unless the condition is on an attribute.
fn check(
    conn: &Connection,
    pk: &str,
    sk: &str,
    condition: Condition,
) -> Result<(bool, Option<u64>), StoreError> {
    if let Condition::Equals(..) = condition {
        let item = get_item(conn, pk, sk)?;
        return Ok((holds_for(condition, item.as_ref()), item.map(|i| i.version)));
    }
    let stored = stored_version(conn, pk, sk)?;
    Ok((holds(condition, stored), stored))
}

fn holds_for(condition: Condition, stored: Option<&Item>) -> bool {
    match condition {
        Condition::Equals(attr, value) => stored.is_some_and(|i| i.str(attr) == Some(value)),
        other => holds(other, stored.map(|i| i.version)),
    }
}

fn holds(condition: Condition, stored: Option<u64>) -> bool {
    match condition {
        Condition::None => true,
        Condition::Absent => stored.is_none(),
        Condition::Exists => stored.is_some(),
        Condition::Version(v) => stored == Some(v),
        // Needs the attributes: see `holds_for`.
        Condition::Equals(..) => false,
    }
}

pub(crate) fn read_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Item, String)> {
    let gsi1pk: Option<String> = row.get(4)?;
    let gsi1sk: Option<String> = row.get(5)?;
    Ok((
        Item {
            pk: row.get(0)?,
            sk: row.get(1)?,
            version: row.get::<_, i64>(2)? as u64,
            ttl: row.get(3)?,
            gsi1: gsi1pk.zip(gsi1sk),
            attrs: Map::new(),
        },
        row.get(6)?,
    ))
}

pub(crate) fn finish(parts: (Item, String)) -> Result<Item, StoreError> {
    let (mut item, attrs) = parts;
    item.attrs = match serde_json::from_str::<Value>(&attrs) {
        Ok(Value::Object(map)) => map,
        _ => return Err(StoreError::Unavailable("sqlite: corrupt attrs".into())),
    };
    Ok(item)
}

fn get_item(conn: &Connection, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
    conn.prepare_cached(GET_ITEM)
        .and_then(|mut stmt| stmt.query_row(params![pk, sk], read_item).optional())
        .map_err(unavailable)?
        .map(finish)
        .transpose()
}

/// Stores `item`; when it is an insert (nothing was stored under its key) under the feed's
/// prefix, records it in the feed too.
fn write_item(
    conn: &Connection,
    feed: Option<&str>,
    item: &Item,
    insert: bool,
) -> Result<(), StoreError> {
    let attrs = serde_json::to_string(&item.attrs)
        .map_err(|e| StoreError::InvalidItem(format!("attrs: {e}")))?;
    let (g_pk, g_sk) = match &item.gsi1 {
        Some((p, s)) => (Some(p.as_str()), Some(s.as_str())),
        None => (None, None),
    };
    let row = params![
        item.pk,
        item.sk,
        item.version as i64,
        item.ttl,
        g_pk,
        g_sk,
        attrs
    ];
    conn.prepare_cached(PUT_ITEM)
        .and_then(|mut stmt| stmt.execute(row))
        .map_err(unavailable)?;
    if insert && feed.is_some_and(|prefix| item.sk.starts_with(prefix)) {
        conn.prepare_cached(FEED_APPEND)
            .and_then(|mut stmt| stmt.execute(row))
            .map_err(unavailable)?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.inner.read(|conn| get_item(conn, pk, sk))
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        item.validate()?;
        self.inner
            .write(Write::Put { item, condition })
            .await
            .map(|_| ())
    }

    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Condition,
    ) -> Result<Option<Item>, StoreError> {
        self.inner
            .write(Write::Delete {
                pk: pk.to_owned(),
                sk: sk.to_owned(),
                condition,
            })
            .await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let limit = query.checked_limit()?;
        let after = query.resume_after()?;
        let sql = if query.descending {
            QUERY_DESC
        } else {
            QUERY_ASC
        };
        let items = self.inner.read(|conn| {
            let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
            let rows = stmt
                .query_map(
                    params![query.pk, query.sk_prefix, after, (limit + 1) as i64],
                    read_item,
                )
                .map_err(unavailable)?;
            let mut items = Vec::with_capacity(limit + 1);
            for row in rows {
                items.push(finish(row.map_err(unavailable)?)?);
            }
            Ok(items)
        })?;
        Ok(query.page_from(items, limit))
    }

    async fn scan(&self, cursor: Option<String>, limit: u32) -> Result<Page, StoreError> {
        let limit = crate::ports::store::scan_limit(limit)?;
        let (pk, sk) = match cursor.as_deref() {
            Some(c) => {
                let (pk, sk) = crate::ports::store::scan_resume_after(c)?;
                (Some(pk), Some(sk))
            }
            None => (None, None),
        };
        let mut items = self.inner.read(|conn| {
            let mut stmt = conn.prepare_cached(SCAN).map_err(unavailable)?;
            let rows = stmt
                .query_map(params![pk, sk, (limit + 1) as i64], read_item)
                .map_err(unavailable)?;
            let mut items = Vec::with_capacity(limit + 1);
            for row in rows {
                items.push(finish(row.map_err(unavailable)?)?);
            }
            Ok(items)
        })?;
        let more = items.len() > limit;
        items.truncate(limit);
        let cursor = more
            .then(|| {
                items
                    .last()
                    .map(|i| crate::ports::store::scan_cursor(&i.pk, &i.sk))
            })
            .flatten();
        Ok(Page { items, cursor })
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        self.inner.write(Write::Transact(ops)).await.map(|_| ())
    }
}

#[async_trait]
impl Feed for SqliteFeed {
    async fn read(&self, limit: u32) -> Result<Vec<FeedRecord>, StoreError> {
        self.inner.read(|conn| {
            let mut stmt = conn.prepare_cached(FEED_READ).map_err(unavailable)?;
            let rows = stmt
                .query_map(params![i64::from(limit)], |row| {
                    Ok((read_item(row)?, row.get::<_, i64>(7)?))
                })
                .map_err(unavailable)?;
            let mut records = Vec::new();
            for row in rows {
                let (parts, position) = row.map_err(unavailable)?;
                records.push(FeedRecord {
                    position: position as u64,
                    item: finish(parts)?,
                });
            }
            Ok(records)
        })
    }

    async fn ack(&self, position: u64) -> Result<(), StoreError> {
        self.inner.write(Write::Ack(position)).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn on_disk() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path).unwrap();
        (dir, path, store)
    }

    fn put_op(item: Item, condition: Condition) -> WriteOp {
        WriteOp::Put { item, condition }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_puts_on_distinct_keys_all_commit_in_few_groups() {
        let (_dir, _path, store) = on_disk();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .put(
                            Item::new("P", format!("S#{i:03}")).with("i", i),
                            Condition::Absent,
                        )
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let page = store
            .query(Query::partition("P").limit(1000))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 200);
        for (i, item) in page.items.iter().enumerate() {
            assert_eq!(item.u64("i"), Some(i as u64));
        }
        // With a real fsync per commit, writes queue behind one another and share commits.
        assert!(store.commits() < 200, "{} commits", store.commits());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_inserts_of_one_key_in_one_group_have_one_winner() {
        let store = SqliteStore::in_memory().unwrap();
        // Hold the in-memory store's only connection, so every put queues and the writer takes
        // them as one group when it is let go.
        let conn = Arc::clone(&store.inner.readers[0]);
        let (held_tx, held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let _guard = conn.lock().unwrap();
            held_tx.send(()).unwrap();
            released.recv().unwrap();
        });
        held.recv().unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .put(Item::new("P", "ONE").with("i", i), Condition::Absent)
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        release.send(()).unwrap();
        holder.join().unwrap();
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => won += 1,
                Err(StoreError::ConditionFailed { pk, sk }) => {
                    assert_eq!((pk.as_str(), sk.as_str()), ("P", "ONE"));
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(won, 1);
        assert!(store.commits() <= 2, "{} commits", store.commits());
    }

    #[test]
    fn a_failing_request_rolls_back_only_itself() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let outcomes = commit_group(
            &conn,
            None,
            vec![
                Write::Put {
                    item: Item::new("P", "A"),
                    condition: Condition::Absent,
                },
                Write::Transact(vec![
                    put_op(Item::new("P", "T1"), Condition::Absent),
                    put_op(Item::new("P", "A"), Condition::Absent),
                    put_op(Item::new("P", "T3"), Condition::None),
                ]),
                Write::Put {
                    item: Item::new("P", "B"),
                    condition: Condition::None,
                },
                Write::Delete {
                    pk: "P".into(),
                    sk: "missing".into(),
                    condition: Condition::Exists,
                },
                Write::Delete {
                    pk: "P".into(),
                    sk: "B".into(),
                    condition: Condition::Version(1),
                },
            ],
        );
        assert_eq!(outcomes.len(), 5);
        assert_eq!(outcomes[0], Ok(None));
        // The transaction's second op saw the first request's insert, in the same group.
        assert_eq!(
            outcomes[1],
            Err(StoreError::TransactionConditionFailed {
                index: 1,
                pk: "P".into(),
                sk: "A".into()
            })
        );
        assert_eq!(outcomes[2], Ok(None));
        assert_eq!(
            outcomes[3],
            Err(StoreError::ConditionFailed {
                pk: "P".into(),
                sk: "missing".into()
            })
        );
        assert_eq!(outcomes[4], Ok(Some(Item::new("P", "B"))));
        assert!(conn.is_autocommit(), "the group committed");
        assert!(get_item(&conn, "P", "A").unwrap().is_some());
        assert!(get_item(&conn, "P", "T1").unwrap().is_none());
        assert!(get_item(&conn, "P", "T3").unwrap().is_none());
        assert!(get_item(&conn, "P", "B").unwrap().is_none());
    }

    #[test]
    fn a_failed_commit_fails_every_request_of_the_group() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        // A deferred foreign key that every insert violates: checked at COMMIT only.
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TEMP TRIGGER orphan AFTER INSERT ON items BEGIN INSERT INTO child VALUES (42); END;",
        )
        .unwrap();
        let outcomes = commit_group(
            &conn,
            None,
            vec![
                Write::Put {
                    item: Item::new("P", "A"),
                    condition: Condition::Absent,
                },
                Write::Delete {
                    pk: "P".into(),
                    sk: "missing".into(),
                    condition: Condition::Exists,
                },
            ],
        );
        assert_eq!(outcomes.len(), 2);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Err(StoreError::Unavailable(_)))),
            "{outcomes:?}"
        );
        assert!(conn.is_autocommit(), "rolled back");
        conn.execute_batch("DROP TRIGGER orphan").unwrap();
        assert!(get_item(&conn, "P", "A").unwrap().is_none());
        // The connection serves the next group.
        let next = commit_group(
            &conn,
            None,
            vec![Write::Put {
                item: Item::new("P", "B"),
                condition: Condition::Absent,
            }],
        );
        assert_eq!(next, vec![Ok(None)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn reads_see_every_write_replied_before_they_start() {
        let (_dir, _path, store) = on_disk();
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    let sk = format!("S#{t:02}");
                    for v in 1..=20u64 {
                        let condition = if v == 1 {
                            Condition::Absent
                        } else {
                            Condition::Version(v - 1)
                        };
                        let item = Item::new("P", &sk).with("n", v).with_version(v);
                        store.put(item, condition).await.unwrap();
                        let got = store.get("P", &sk).await.unwrap().unwrap();
                        assert_eq!((got.version, got.u64("n")), (v, Some(v)));
                        let page = store
                            .query(Query::partition("P").prefix(&sk))
                            .await
                            .unwrap();
                        assert_eq!(page.items[0].version, v);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // And across tasks: what one task was told is written, another task reads.
        for v in 0..20u64 {
            let writer = store.clone();
            let sk = format!("X#{v:02}");
            let written = tokio::spawn({
                let sk = sk.clone();
                async move { writer.put(Item::new("Q", sk), Condition::Absent).await }
            });
            written.await.unwrap().unwrap();
            let reader = store.clone();
            let read = tokio::spawn(async move { reader.get("Q", &sk).await });
            assert!(read.await.unwrap().unwrap().is_some());
        }
    }

    async fn positions_and_keys(feed: &SqliteFeed) -> Vec<(u64, String)> {
        feed.read(1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.position, r.item.sk))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_feed_records_inserts_under_its_prefix_in_commit_order() {
        let (_dir, path, store) = on_disk();
        let store = store.with_feed("AUDIT#");
        let feed = store.feed();
        let first = Item::new("P", "AUDIT#1").with("n", 1).with_ttl(99);
        store.put(first.clone(), Condition::Absent).await.unwrap();
        // A replacement, other prefixes, deletes, counts: nothing.
        store
            .put(
                Item::new("P", "AUDIT#1").with("n", 2).with_version(2),
                Condition::None,
            )
            .await
            .unwrap();
        store
            .put(Item::new("P", "OTHER#1"), Condition::None)
            .await
            .unwrap();
        store
            .transact(vec![WriteOp::Count {
                pk: "P".into(),
                sk: "AUDIT#count".into(),
                attr: "n".into(),
                below: 10,
                ttl: 1,
            }])
            .await
            .unwrap();
        store
            .delete("P", "AUDIT#1", Condition::Exists)
            .await
            .unwrap();
        // A failed transaction records nothing, a committed one each insert in op order.
        let failed = store
            .transact(vec![
                put_op(Item::new("P", "AUDIT#2"), Condition::Absent),
                WriteOp::Check {
                    pk: "P".into(),
                    sk: "missing".into(),
                    condition: Condition::Exists,
                },
            ])
            .await;
        assert!(matches!(
            failed,
            Err(StoreError::TransactionConditionFailed { index: 1, .. })
        ));
        store
            .put(Item::new("P", "AUDIT#0"), Condition::None)
            .await
            .unwrap();
        store
            .transact(vec![
                put_op(Item::new("P", "AUDIT#4"), Condition::Absent),
                put_op(Item::new("P", "AUDIT#3"), Condition::None),
                put_op(
                    Item::new("P", "AUDIT#0").with_version(2),
                    Condition::Version(1),
                ),
            ])
            .await
            .unwrap();
        // Inserted again after its deletion: a new item, so a new record.
        store
            .put(Item::new("P", "AUDIT#1").with("n", 3), Condition::Absent)
            .await
            .unwrap();

        let records = feed.read(1000).await.unwrap();
        let keys: Vec<_> = records.iter().map(|r| r.item.sk.as_str()).collect();
        assert_eq!(
            keys,
            ["AUDIT#1", "AUDIT#0", "AUDIT#4", "AUDIT#3", "AUDIT#1"]
        );
        assert!(records.windows(2).all(|w| w[0].position < w[1].position));
        // The item as inserted, whatever happened to it after.
        assert_eq!(records[0].item, first);
        assert_eq!(records[4].item.u64("n"), Some(3));
        assert_eq!(feed.read(2).await.unwrap(), records[..2].to_vec());
        assert_eq!(feed.read(0).await.unwrap(), Vec::new());

        // Acks forget up to a position; later records stay.
        feed.ack(records[1].position).await.unwrap();
        assert_eq!(feed.read(1000).await.unwrap(), records[2..].to_vec());
        feed.ack(records[3].position).await.unwrap();
        let last = records[4].position;
        assert_eq!(positions_and_keys(&feed).await, [(last, "AUDIT#1".into())]);

        // What is unacknowledged survives a restart, and positions are never reused.
        drop(feed);
        drop(store);
        let store = SqliteStore::open(&path).unwrap().with_feed("AUDIT#");
        let feed = store.feed();
        assert_eq!(positions_and_keys(&feed).await, [(last, "AUDIT#1".into())]);
        feed.ack(u64::MAX).await.unwrap();
        assert!(feed.read(10).await.unwrap().is_empty());
        store
            .put(Item::new("P", "AUDIT#5"), Condition::Absent)
            .await
            .unwrap();
        let after = feed.read(10).await.unwrap();
        assert_eq!(after.len(), 1);
        assert!(after[0].position > last);
    }

    #[tokio::test]
    async fn the_sweep_deletes_exactly_the_items_past_their_ttl() {
        let (_dir, _path, store) = on_disk();
        let store = store.with_feed("AUDIT#");
        for (sk, ttl) in [
            ("past", Some(99)),
            ("edge", Some(100)),
            ("future", Some(101)),
        ] {
            let mut item = Item::new("P", sk);
            item.ttl = ttl;
            store.put(item, Condition::Absent).await.unwrap();
        }
        store
            .put(Item::new("P", "forever"), Condition::Absent)
            .await
            .unwrap();
        store
            .put(Item::new("P", "AUDIT#1"), Condition::Absent)
            .await
            .unwrap();
        store.sweep_expired(100).await.unwrap();
        let left: Vec<String> = store
            .query(Query::partition("P"))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|i| i.sk)
            .collect();
        assert_eq!(left, ["AUDIT#1", "edge", "forever", "future"]);
        // Deletions by expiry are not audit events: the feed holds only the insert.
        assert_eq!(store.feed().read(10).await.unwrap().len(), 1);
        store.sweep_expired(1_000).await.unwrap();
        let left = store.query(Query::partition("P")).await.unwrap().items;
        assert_eq!(left.len(), 2);
    }

    #[tokio::test]
    async fn without_with_feed_nothing_is_recorded() {
        let store = SqliteStore::in_memory().unwrap();
        store
            .put(Item::new("P", "AUDIT#1"), Condition::Absent)
            .await
            .unwrap();
        assert!(store.feed().read(10).await.unwrap().is_empty());
        // Each in-memory store is a database of its own.
        let other = SqliteStore::in_memory().unwrap();
        assert!(other.get("P", "AUDIT#1").await.unwrap().is_none());
        assert!(store.get("P", "AUDIT#1").await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_last_handle_ends_the_writer_thread() {
        let (_dir, path, store) = on_disk();
        store
            .put(Item::new("P", "S"), Condition::Absent)
            .await
            .unwrap();
        let feed = store.feed();
        let commits = Arc::clone(&store.inner.commits);
        drop(store);
        // The feed handle keeps the writer.
        feed.ack(0).await.unwrap();
        assert!(Arc::strong_count(&commits) > 1);
        let (done, dropped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(feed);
            done.send(()).unwrap();
        });
        dropped
            .recv_timeout(Duration::from_secs(10))
            .expect("drop hung");
        // The writer's share of the counter went with its thread.
        assert_eq!(Arc::strong_count(&commits), 1);
        // Every connection is closed: WAL checkpointed into the file and its log removed.
        assert!(!path.with_extension("db-wal").exists());
        let again = SqliteStore::open(&path).unwrap();
        assert!(again.get("P", "S").await.unwrap().is_some());
    }
}
