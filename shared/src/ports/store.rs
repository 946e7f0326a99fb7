//! The item-level store every domain module builds on (`docs/architecture.md` §3).
//!
//! An [`Item`] is a partition key, a sort key, a version the store compares under a
//! [`Condition`], an optional expiry (`ttl`, epoch seconds, which the backend may act on late:
//! readers check expiry themselves), optional secondary-index keys, and free JSON attributes.
//! Adapters know nothing of the domain; the same contract suite (`tests/src/contract/store.rs`)
//! runs against every adapter.
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Attribute names the store itself uses; an item's `attrs` may not contain them.
pub const RESERVED: [&str; 6] = ["pk", "sk", "v", "ttl", "gsi1pk", "gsi1sk"];

/// DynamoDB's limit on one transaction, kept by every adapter so both behave alike.
pub const MAX_TRANSACTION_OPS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub version: u64,
    pub ttl: Option<i64>,
    pub gsi1: Option<(String, String)>,
    pub attrs: Map<String, Value>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
            version: 1,
            ttl: None,
            gsi1: None,
            attrs: Map::new(),
        }
    }

    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.attrs.insert(name.to_owned(), value.into());
        self
    }

    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    pub fn with_ttl(mut self, epoch_seconds: i64) -> Self {
        self.ttl = Some(epoch_seconds);
        self
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }

    pub fn u64(&self, name: &str) -> Option<u64> {
        self.attrs.get(name).and_then(Value::as_u64)
    }

    /// Checks what every adapter must refuse: empty keys, reserved attribute names.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.pk.is_empty() || self.sk.is_empty() {
            return Err(StoreError::InvalidItem("empty key".into()));
        }
        if let Some(name) = self.attrs.keys().find(|k| RESERVED.contains(&k.as_str())) {
            return Err(StoreError::InvalidItem(format!(
                "attribute name `{name}` is reserved"
            )));
        }
        Ok(())
    }
}

/// What must hold of the stored item for a write to go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// No condition.
    None,
    /// No item with this key exists.
    Absent,
    /// An item with this key exists.
    Exists,
    /// An item with this key exists at exactly this version.
    Version(u64),
    /// An item with this key exists and its attribute (the first) is this string (the
    /// second): a write whose precondition is a state, not a version read beforehand.
    Equals(&'static str, &'static str),
}

/// One write of an all-or-nothing [`Store::transact`].
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        pk: String,
        sk: String,
        condition: Condition,
    },
    Check {
        pk: String,
        sk: String,
        condition: Condition,
    },
    /// Adds one to the counter item's numeric attribute `attr` (the item is made, with `ttl`,
    /// when absent), on condition that it is below `below` beforehand; otherwise the operation
    /// fails like any other condition. Atomic in the store: racing counts never need a retry,
    /// unlike a read-modify-write under a version condition (DynamoDB's `ADD`).
    Count {
        pk: String,
        sk: String,
        attr: String,
        below: i64,
        ttl: i64,
    },
    /// Sets the attributes in `set` of an existing item (others are kept) and adds one to its
    /// version, when `condition` holds; an absent item fails like a condition, whatever
    /// `condition` says (`Absent` is refused as invalid). A write that needs no read first:
    /// DynamoDB's `UpdateItem` with `SET`, inside a transaction as `Update`.
    Update {
        pk: String,
        sk: String,
        set: Map<String, Value>,
        condition: Condition,
    },
}

impl WriteOp {
    pub fn key(&self) -> (&str, &str) {
        match self {
            WriteOp::Put { item, .. } => (&item.pk, &item.sk),
            WriteOp::Delete { pk, sk, .. }
            | WriteOp::Check { pk, sk, .. }
            | WriteOp::Count { pk, sk, .. }
            | WriteOp::Update { pk, sk, .. } => (pk, sk),
        }
    }

    pub fn condition(&self) -> Condition {
        match self {
            WriteOp::Put { condition, .. }
            | WriteOp::Delete { condition, .. }
            | WriteOp::Check { condition, .. }
            | WriteOp::Update { condition, .. } => *condition,
            // Its own condition (below the bound), checked by the adapter.
            WriteOp::Count { .. } => Condition::None,
        }
    }
}

/// Reads one partition in sort-key order, optionally limited to a sort-key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub pk: String,
    pub sk_prefix: String,
    pub limit: u32,
    pub cursor: Option<String>,
    pub descending: bool,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk_prefix: String::new(),
            limit: 100,
            cursor: None,
            descending: false,
        }
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.sk_prefix = prefix.into();
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }

    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    /// The sort key to continue after, when the query carries a cursor. A cursor names the
    /// partition and prefix it came from, so one cannot be replayed against another query.
    pub fn resume_after(&self) -> Result<Option<String>, StoreError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| StoreError::InvalidCursor)?;
        let c: CursorBody =
            serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
        if c.pk != self.pk || c.p != self.sk_prefix || !c.sk.starts_with(&self.sk_prefix) {
            return Err(StoreError::InvalidCursor);
        }
        Ok(Some(c.sk))
    }

    /// The cursor that continues this query after the item with sort key `last_sk`.
    pub fn cursor_after(&self, last_sk: &str) -> String {
        let body = CursorBody {
            pk: self.pk.clone(),
            p: self.sk_prefix.clone(),
            sk: last_sk.to_owned(),
        };
        // Serialising three strings cannot fail; fall back to an empty (invalid) cursor anyway.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// The page for `items`, read as up to `limit + 1` in order: the extra item only tells that
    /// more follow, so it is dropped and a cursor after the last kept item is given.
    pub fn page_from(&self, mut items: Vec<Item>, limit: usize) -> Page {
        let cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| self.cursor_after(&last.sk))
        } else {
            None
        };
        Page { items, cursor }
    }

    /// Validates the limit: 1..=1000 items a page.
    pub fn checked_limit(&self) -> Result<usize, StoreError> {
        match self.limit {
            1..=1000 => Ok(self.limit as usize),
            _ => Err(StoreError::InvalidItem(
                "query limit must be 1..=1000".into(),
            )),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    pk: String,
    p: String,
    sk: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present when more items may follow; pass it back in [`Query::cursor`].
    pub cursor: Option<String>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A single write's condition did not hold.
    // Keys stay out of the message: they can hold user ids, which may be emails.
    #[error("condition failed")]
    ConditionFailed { pk: String, sk: String },
    /// A transaction was cancelled because the condition of operation `index` did not hold.
    /// Nothing was written.
    #[error("transaction condition {index} failed")]
    TransactionConditionFailed {
        index: usize,
        pk: String,
        sk: String,
    },
    /// Another transaction touched the same items at the same time; retrying may succeed.
    #[error("transaction conflict")]
    Conflict,
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("invalid item: {0}")]
    InvalidItem(String),
    /// The backend failed or could not be reached. The message is for logs, never for clients.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The deployment is set up wrong (no such table, access denied): retrying cannot help.
    /// For logs, never for clients.
    #[error("store misconfigured: {0}")]
    Misconfigured(String),
}

#[async_trait]
pub trait Store: Send + Sync {
    /// A strongly consistent read of one item.
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;
    /// Writes `item` when `condition` holds of the stored one.
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError>;
    /// Deletes an item when `condition` holds, returning what was stored. With
    /// [`Condition::Exists`] this is single-use: of any number of racing callers, one gets the
    /// item and the others get [`StoreError::ConditionFailed`].
    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Condition,
    ) -> Result<Option<Item>, StoreError>;
    async fn query(&self, query: Query) -> Result<Page, StoreError>;
    /// One page of every item in the store, for maintenance jobs (the re-key job): across the
    /// pages that following `cursor` gives, each item that exists throughout appears exactly
    /// once, in no promised order. At most `limit` (1–1,000) items a page.
    async fn scan(&self, cursor: Option<String>, limit: u32) -> Result<Page, StoreError>;
    /// All of `ops` or none of them, at most [`MAX_TRANSACTION_OPS`], at most one per key.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
}

/// Every item `query` matches, following its pages (for small partitions read whole: a
/// tenant's grants, management keys, members).
pub async fn query_all(store: &dyn Store, query: Query) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(query.clone().after(cursor)).await?;
        out.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// The cursor of a scan page that ended at this item's key (opaque to callers).
pub fn scan_cursor(pk: &str, sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::json!([pk, sk]).to_string())
}

/// The key a scan cursor resumes after.
pub fn scan_resume_after(cursor: &str) -> Result<(String, String), StoreError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let (pk, sk): (String, String) =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
    Ok((pk, sk))
}

/// A scan page's limit, checked as [`Query`]'s is.
pub fn scan_limit(limit: u32) -> Result<usize, StoreError> {
    match limit {
        1..=1000 => Ok(limit as usize),
        _ => Err(StoreError::InvalidItem("scan limit must be 1-1000".into())),
    }
}

/// Checks what every adapter must refuse in a transaction.
pub fn validate_transaction(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACTION_OPS {
        return Err(StoreError::InvalidItem(format!(
            "a transaction holds 1..={MAX_TRANSACTION_OPS} operations"
        )));
    }
    let mut keys = std::collections::HashSet::new();
    for op in ops {
        if let WriteOp::Put { item, .. } = op {
            item.validate()?;
        }
        if let WriteOp::Count { pk, sk, attr, .. } = op
            && (pk.is_empty() || sk.is_empty() || RESERVED.contains(&attr.as_str()))
        {
            return Err(StoreError::InvalidItem(
                "a count needs keys and an attribute of its own".into(),
            ));
        }
        if let WriteOp::Update {
            pk,
            sk,
            set,
            condition,
        } = op
            && (pk.is_empty()
                || sk.is_empty()
                || set.is_empty()
                || *condition == Condition::Absent
                || set.keys().any(|k| RESERVED.contains(&k.as_str())))
        {
            return Err(StoreError::InvalidItem(
                "an update needs keys, attributes of its own and a condition an item can meet"
                    .into(),
            ));
        }
        if !keys.insert(op.key()) {
            return Err(StoreError::InvalidItem(
                "a transaction touches each key at most once".into(),
            ));
        }
    }
    Ok(())
}
