//! A store's change feed: the items inserted into it, in the order the store committed them,
//! until a reader acknowledges them. On DynamoDB the table's stream plays this part (the sealer
//! function is driven by it); on the embedded store the adapter keeps the feed in the same
//! database and writes a record in the same transaction as the insert it describes.
//!
//! Only inserts of items whose sort key begins with the prefix the feed was opened with are
//! recorded (the DynamoDB event source mapping filters the same way), so a feed costs nothing for
//! other writes. A record is delivered at least once: a reader that fails before [`Feed::ack`]
//! reads it again, so readers must tolerate repeats.
use crate::ports::store::{Item, StoreError};
use async_trait::async_trait;

/// One inserted item and its place in the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRecord {
    /// Increases with every record the store commits; never reused.
    pub position: u64,
    /// The item as inserted (the stream's "new image"): later changes or a deletion of the item
    /// do not alter what the feed delivers.
    pub item: Item,
}

#[async_trait]
pub trait Feed: Send + Sync {
    /// Up to `limit` unacknowledged records, oldest first.
    async fn read(&self, limit: u32) -> Result<Vec<FeedRecord>, StoreError>;
    /// Forgets every record at or before `position`.
    async fn ack(&self, position: u64) -> Result<(), StoreError>;
}
