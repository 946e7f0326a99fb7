//! The embedded store: the same `(pk, sk) -> item` model as the DynamoDB table, in one SQLite
//! file. One connection behind a mutex, driven from the blocking pool; every write is a SQLite
//! transaction, so conditions and writes are atomic.
use crate::ports::store::{
    Condition, Item, Page, Query, Store, StoreError, WriteOp, validate_transaction,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};

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
";

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(unavailable)?;
        Self::init(conn)
    }

    /// A private in-memory store, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(unavailable)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("sqlite task: {e}")))?
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {e}"))
}

fn stored_version(conn: &Connection, pk: &str, sk: &str) -> Result<Option<u64>, StoreError> {
    conn.query_row(
        "SELECT v FROM items WHERE pk = ?1 AND sk = ?2",
        params![pk, sk],
        |row| row.get::<_, i64>(0),
    )
    .optional()
    .map(|v| v.map(|v| v as u64))
    .map_err(unavailable)
}

fn holds(condition: Condition, stored: Option<u64>) -> bool {
    match condition {
        Condition::None => true,
        Condition::Absent => stored.is_none(),
        Condition::Exists => stored.is_some(),
        Condition::Version(v) => stored == Some(v),
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

pub(crate) const COLUMNS: &str = "pk, sk, v, ttl, gsi1pk, gsi1sk, attrs";

fn get_item(conn: &Connection, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM items WHERE pk = ?1 AND sk = ?2"),
        params![pk, sk],
        read_item,
    )
    .optional()
    .map_err(unavailable)?
    .map(finish)
    .transpose()
}

fn write_item(conn: &Connection, item: &Item) -> Result<(), StoreError> {
    let attrs = serde_json::to_string(&item.attrs)
        .map_err(|e| StoreError::InvalidItem(format!("attrs: {e}")))?;
    let (g_pk, g_sk) = match &item.gsi1 {
        Some((p, s)) => (Some(p.as_str()), Some(s.as_str())),
        None => (None, None),
    };
    conn.execute(
        &format!("INSERT OR REPLACE INTO items ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            item.pk,
            item.sk,
            item.version as i64,
            item.ttl,
            g_pk,
            g_sk,
            attrs
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.with_conn(move |conn| get_item(conn, &pk, &sk)).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        item.validate()?;
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            if !holds(condition, stored_version(&tx, &item.pk, &item.sk)?) {
                return Err(StoreError::ConditionFailed {
                    pk: item.pk,
                    sk: item.sk,
                });
            }
            write_item(&tx, &item)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Condition,
    ) -> Result<Option<Item>, StoreError> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let old = get_item(&tx, &pk, &sk)?;
            if !holds(condition, old.as_ref().map(|i| i.version)) {
                return Err(StoreError::ConditionFailed { pk, sk });
            }
            tx.execute(
                "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
                params![pk, sk],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(old)
        })
        .await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let limit = query.checked_limit()?;
        let after = query.resume_after()?;
        self.with_conn(move |conn| {
            let (cmp, order) = if query.descending {
                ("<", "DESC")
            } else {
                (">", "ASC")
            };
            let sql = format!(
                "SELECT {COLUMNS} FROM items WHERE pk = ?1 AND substr(sk, 1, length(?2)) = ?2 \
                 AND (?3 IS NULL OR sk {cmp} ?3) ORDER BY sk {order} LIMIT ?4"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
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
            Ok(query.page_from(items, limit))
        })
        .await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            // Check every condition first, as DynamoDB does, then write: a failure names the
            // first condition that did not hold and the transaction rolls back on drop.
            let mut counted = Vec::new();
            for (index, op) in ops.iter().enumerate() {
                let (pk, sk) = op.key();
                if let WriteOp::Count {
                    attr, below, ttl, ..
                } = op
                {
                    let item = get_item(&tx, pk, sk)?;
                    let n = item
                        .as_ref()
                        .and_then(|i| i.attrs.get(attr.as_str()))
                        .and_then(serde_json::Value::as_i64)
                        .unwrap_or(0);
                    if n >= *below {
                        return Err(StoreError::TransactionConditionFailed {
                            index,
                            pk: pk.to_owned(),
                            sk: sk.to_owned(),
                        });
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
                if !holds(op.condition(), stored_version(&tx, pk, sk)?) {
                    return Err(StoreError::TransactionConditionFailed {
                        index,
                        pk: pk.to_owned(),
                        sk: sk.to_owned(),
                    });
                }
            }
            for op in &ops {
                match op {
                    WriteOp::Put { item, .. } => write_item(&tx, item)?,
                    WriteOp::Delete { pk, sk, .. } => {
                        tx.execute(
                            "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
                            params![pk, sk],
                        )
                        .map_err(unavailable)?;
                    }
                    WriteOp::Check { .. } | WriteOp::Count { .. } => {}
                }
            }
            for item in &counted {
                write_item(&tx, item)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }
}
