//! The `latchkey-sealer` function (`docs/architecture.md` §5): the audit log's tamper evidence
//! on AWS. Two event sources, both in `template.yaml`:
//!
//! - the table's DynamoDB stream, filtered to inserts of event items (sort key `EV#…`): each
//!   batch's new images are sealed, per tenant, by the domain's one sealer
//!   ([`latchkey::domain::audit::seal`]). A batch that fails returns an error: Lambda retries it
//!   (bisecting), the sealer skips what it already sealed, and after the last retry the batch's
//!   description goes to the on-failure queue. A modified or removed event (which the commit
//!   path never does) is logged as a warning: it will fail verification.
//! - a schedule, `{"task": "flush"}`: signs the unsigned tails of quiet tenants.
use latchkey::adapters::dynamodb::item_from_image;
use latchkey::domain::audit::EVENT_SK_PREFIX;
use latchkey::domain::audit::seal::{Sealed, Sealer};
use latchkey::ports::store::Item;
use serde::Deserialize;
use serde_json::{Value, json};

pub const NAME: &str = "latchkey-sealer";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the event is neither a DynamoDB stream batch nor a known task")]
    UnknownEvent,
    #[error("a stream record is unreadable: {0}")]
    BadRecord(String),
    #[error("sealing failed (the batch will be retried): {0}")]
    Failed(String),
}

/// A DynamoDB stream record as Lambda delivers it (only the fields the sealer reads).
#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "eventName")]
    event_name: String,
    #[serde(rename = "eventSource", default)]
    event_source: String,
    dynamodb: Change,
}

#[derive(Debug, Deserialize)]
struct Change {
    #[serde(rename = "Keys", default)]
    keys: Value,
    #[serde(rename = "NewImage")]
    new_image: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Batch {
    #[serde(rename = "Records")]
    records: Vec<Record>,
}

/// The items a stream batch inserted under the event prefix; changes to event items other than
/// inserts are logged (they break verification) and skipped.
fn inserted_events(batch: Batch) -> Result<Vec<Item>, SealError> {
    let mut items = Vec::new();
    for record in batch.records {
        if record.event_source != "aws:dynamodb" {
            return Err(SealError::UnknownEvent);
        }
        let sk = record.dynamodb.keys["sk"]["S"].as_str().unwrap_or_default();
        if !sk.starts_with(EVENT_SK_PREFIX) {
            continue;
        }
        match (record.event_name.as_str(), record.dynamodb.new_image) {
            ("INSERT", Some(image)) => items
                .push(item_from_image(&image).map_err(|e| SealError::BadRecord(e.to_string()))?),
            (name, _) => tracing::warn!(
                event_name = name,
                "an audit event was changed or removed after commit; verification will name it"
            ),
        }
    }
    Ok(items)
}

/// Handles one invocation; the answer is what was sealed.
pub async fn handle(sealer: &Sealer, event: Value) -> Result<Value, SealError> {
    let done: Sealed = if event.get("Records").is_some() {
        let batch: Batch =
            serde_json::from_value(event).map_err(|e| SealError::BadRecord(e.to_string()))?;
        let items = inserted_events(batch)?;
        sealer
            .seal_items(items)
            .await
            .map_err(|e| SealError::Failed(e.to_string()))?
    } else if event.get("task").and_then(Value::as_str) == Some("flush") {
        sealer
            .flush_due()
            .await
            .map_err(|e| SealError::Failed(e.to_string()))?
    } else {
        return Err(SealError::UnknownEvent);
    };
    tracing::info!(
        entries = done.entries,
        duplicates = done.duplicates,
        checkpoints = done.checkpoints,
        "sealed"
    );
    Ok(json!(done))
}

impl SealError {
    /// `Retryable.*` when Lambda's retry may help, `NotRetryable.*` otherwise.
    pub fn error_type(&self) -> String {
        match self {
            SealError::UnknownEvent => "NotRetryable.UnknownEvent",
            SealError::BadRecord(_) => "NotRetryable.BadRecord",
            SealError::Failed(_) => "Retryable.SealFailed",
        }
        .to_owned()
    }
}

impl From<SealError> for lambda_runtime::Diagnostic {
    fn from(e: SealError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type(),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use latchkey::adapters::local_signer::LocalSigner;
    use latchkey::domain::audit::seal::SealPolicy;
    use latchkey::domain::audit::{AuditContext, Change, verify};
    use latchkey::ports::random::OsRandom;
    use latchkey::ports::store::{Condition, WriteOp};
    use std::sync::Arc;

    fn sealer(services: &latchkey::Services) -> Sealer {
        Sealer::new(
            services.store.clone(),
            services.clock.clone(),
            services.random.clone(),
            Arc::new(LocalSigner::ephemeral(&OsRandom).unwrap()),
            SealPolicy::default(),
        )
    }

    /// The stream record Lambda delivers for an inserted item, in DynamoDB JSON.
    fn record(name: &str, item: &Item) -> Value {
        let mut image = serde_json::Map::new();
        image.insert("pk".into(), json!({ "S": item.pk }));
        image.insert("sk".into(), json!({ "S": item.sk }));
        image.insert("v".into(), json!({ "N": item.version.to_string() }));
        for (k, v) in &item.attrs {
            image.insert(k.clone(), dynamo_json(v));
        }
        json!({
            "eventID": "1", "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1764417600.0,
                "Keys": { "pk": { "S": item.pk }, "sk": { "S": item.sk } },
                "NewImage": Value::Object(image),
                "SequenceNumber": "100", "SizeBytes": 300, "StreamViewType": "NEW_IMAGE"
            },
            "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/latchkey/stream/2026-12-02T00:00:00.000"
        })
    }

    fn dynamo_json(v: &Value) -> Value {
        match v {
            Value::Null => json!({ "NULL": true }),
            Value::Bool(b) => json!({ "BOOL": b }),
            Value::Number(n) => json!({ "N": n.to_string() }),
            Value::String(s) => json!({ "S": s }),
            Value::Array(a) => json!({ "L": a.iter().map(dynamo_json).collect::<Vec<_>>() }),
            Value::Object(m) => json!({
                "M": m.iter().map(|(k, v)| (k.clone(), dynamo_json(v))).collect::<serde_json::Map<_, _>>()
            }),
        }
    }

    async fn committed(services: &latchkey::Services, n: usize) -> Vec<Item> {
        let ctx = AuditContext::system("test", "req");
        for i in 0..n {
            services
                .journal
                .commit(
                    "t-seal",
                    &ctx,
                    Change {
                        action: "thing.create",
                        target: format!("thing:{i}"),
                        summary: json!({ "fields": ["name"], "count": i, "nested": { "ok": true, "none": null } }),
                        ops: vec![WriteOp::Put {
                            item: Item::new("T#t-seal#THING", format!("{i}")),
                            condition: Condition::Absent,
                        }],
                    },
                )
                .await
                .unwrap();
        }
        let (items, _) =
            latchkey::domain::audit::event_items(&*services.store, "t-seal", 1000, None, false)
                .await
                .unwrap();
        items
    }

    #[tokio::test]
    async fn a_stream_batch_of_inserts_is_sealed_once_and_verifies() {
        let services = latchkey::testing::services().unwrap();
        let sealer = sealer(&services);
        let items = committed(&services, 5).await;
        let mut records: Vec<Value> = items.iter().map(|i| record("INSERT", i)).collect();
        // Not an event: skipped.
        records.push(record("INSERT", &Item::new("T#t-seal#THING", "0")));
        // An event removed: logged and skipped.
        records.push(record("REMOVE", &items[0]));
        let batch = json!({ "Records": records });
        let done = handle(&sealer, batch.clone()).await.unwrap();
        assert_eq!(done["entries"], 5);
        // Lambda delivers a failed batch again: nothing is sealed twice.
        let again = handle(&sealer, batch).await.unwrap();
        assert_eq!(
            (again["entries"].as_u64(), again["duplicates"].as_u64()),
            (Some(0), Some(5))
        );

        sealer.flush("t-seal", true).await.unwrap();
        let evidence = verify::collect(&*services.store, "t-seal").await.unwrap();
        let key = sealer.signer().public_key().await.unwrap();
        let report = verify::check(&evidence, &key, services.clock.now());
        assert_eq!(report.broken, None, "{report:?}");
        assert_eq!(
            (report.sealed, report.signed_through, report.checkpoints),
            (5, 5, 1)
        );
    }

    #[tokio::test]
    async fn a_scheduled_flush_signs_and_other_events_are_refused() {
        let services = latchkey::testing::services().unwrap();
        let sealer = sealer(&services);
        let done = handle(&sealer, json!({ "task": "flush" })).await.unwrap();
        assert_eq!(done["checkpoints"], 0);
        let err = handle(&sealer, json!({ "task": "backup" }))
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "NotRetryable.UnknownEvent");
        let err = handle(
            &sealer,
            json!({ "Records": [{ "eventSource": "aws:sqs" }] }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "NotRetryable.BadRecord");
    }
}
