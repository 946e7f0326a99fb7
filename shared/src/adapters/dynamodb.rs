//! The production store: one DynamoDB table, `pk`/`sk` string keys, `v` (version), `ttl`, and
//! `gsi1pk`/`gsi1sk` for the secondary index; every other attribute is the item's JSON mapped
//! to DynamoDB types with serde_dynamo.
use crate::ports::store::{
    Condition, Item, Page, Query, Store, StoreError, WriteOp, validate_transaction,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue, ScalarAttributeType,
    StreamSpecification, StreamViewType, TransactWriteItem, Update,
};
use serde_json::{Map, Value};
use std::collections::HashMap;

type Attrs = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with the same keys and index as `template.yaml`, for tests and for
    /// running against DynamoDB Local. Production tables come from the template.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name("gsi1")
            .key_schema(key("gsi1pk", KeyType::Hash).map_err(build_error)?)
            .key_schema(key("gsi1sk", KeyType::Range).map_err(build_error)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build_error)?;
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk").map_err(build_error)?)
            .attribute_definitions(attr("sk").map_err(build_error)?)
            .attribute_definitions(attr("gsi1pk").map_err(build_error)?)
            .attribute_definitions(attr("gsi1sk").map_err(build_error)?)
            .key_schema(key("pk", KeyType::Hash).map_err(build_error)?)
            .key_schema(key("sk", KeyType::Range).map_err(build_error)?)
            .global_secondary_indexes(gsi)
            // As the template: the stream that drives the audit sealer.
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{}", DisplayErrorContext(e))))?;
        // As the template: DynamoDB deletes items whose `ttl` has passed.
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                    .attribute_name("ttl")
                    .enabled(true)
                    .build()
                    .map_err(build_error)?,
            )
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{}", DisplayErrorContext(e))))?;
        Ok(())
    }

    pub async fn delete_table(&self) -> Result<(), StoreError> {
        self.client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("{}", DisplayErrorContext(e))))?;
        Ok(())
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::InvalidItem(format!("request: {e}"))
}

fn sdk_error<E, R>(e: aws_sdk_dynamodb::error::SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let permanent = super::permanent_aws_error(e.code());
    let message = format!("dynamodb: {}", DisplayErrorContext(e));
    if permanent {
        StoreError::Misconfigured(message)
    } else {
        StoreError::Unavailable(message)
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> Attrs {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn to_attrs(item: &Item) -> Result<Attrs, StoreError> {
    let mut out: Attrs = serde_dynamo::to_item(&item.attrs)
        .map_err(|e| StoreError::InvalidItem(format!("attrs: {e}")))?;
    out.insert("pk".into(), s(&item.pk));
    out.insert("sk".into(), s(&item.sk));
    out.insert("v".into(), n(item.version));
    if let Some(ttl) = item.ttl {
        out.insert("ttl".into(), n(ttl));
    }
    if let Some((gpk, gsk)) = &item.gsi1 {
        out.insert("gsi1pk".into(), s(gpk));
        out.insert("gsi1sk".into(), s(gsk));
    }
    Ok(out)
}

/// The item a DynamoDB stream record's `NewImage` (or `OldImage`) shows, in the JSON the stream
/// and Lambda deliver (`{"pk": {"S": "…"}, …}`).
pub fn item_from_image(image: &Value) -> Result<Item, StoreError> {
    let image: serde_dynamo::Item = serde_json::from_value(image.clone())
        .map_err(|e| StoreError::InvalidItem(format!("stream image: {e}")))?;
    from_attrs(image.into())
}

pub(crate) fn from_attrs(mut attrs: Attrs) -> Result<Item, StoreError> {
    let corrupt = |what: &str| StoreError::Unavailable(format!("dynamodb: item without {what}"));
    let take_s = |attrs: &mut Attrs, name: &str| match attrs.remove(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    };
    let pk = take_s(&mut attrs, "pk").ok_or_else(|| corrupt("pk"))?;
    let sk = take_s(&mut attrs, "sk").ok_or_else(|| corrupt("sk"))?;
    let version = match attrs.remove("v") {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt("v"))?,
        _ => return Err(corrupt("v")),
    };
    let ttl = match attrs.remove("ttl") {
        Some(AttributeValue::N(v)) => Some(v.parse().map_err(|_| corrupt("ttl"))?),
        _ => None,
    };
    let gsi1 = take_s(&mut attrs, "gsi1pk").zip(take_s(&mut attrs, "gsi1sk"));
    let attrs: Map<String, Value> = serde_dynamo::from_item(attrs)
        .map_err(|e| StoreError::Unavailable(format!("dynamodb: attrs: {e}")))?;
    Ok(Item {
        pk,
        sk,
        version,
        ttl,
        gsi1,
        attrs,
    })
}

/// A condition expression and its placeholders.
struct Expr {
    expression: Option<String>,
    names: Option<HashMap<String, String>>,
    values: Option<Attrs>,
}

fn condition_expr(condition: Condition) -> Expr {
    let plain = |e: &str| Expr {
        expression: Some(e.to_owned()),
        names: None,
        values: None,
    };
    match condition {
        Condition::None => Expr {
            expression: None,
            names: None,
            values: None,
        },
        Condition::Absent => plain("attribute_not_exists(pk)"),
        Condition::Exists => plain("attribute_exists(pk)"),
        Condition::Version(v) => Expr {
            expression: Some("#v = :v".to_owned()),
            names: Some(HashMap::from([("#v".to_owned(), "v".to_owned())])),
            values: Some(HashMap::from([(":v".to_owned(), n(v))])),
        },
        Condition::Equals(attr, value) => Expr {
            expression: Some("#c = :c".to_owned()),
            names: Some(HashMap::from([("#c".to_owned(), attr.to_owned())])),
            values: Some(HashMap::from([(":c".to_owned(), s(value))])),
        },
    }
}

/// [`WriteOp::Count`]: add one to the attribute (and the version), keep the first TTL, and
/// only while the attribute is below the bound.
const COUNT_UPDATE: &str = "ADD #a :one, #v :one SET #t = if_not_exists(#t, :ttl)";
const COUNT_CONDITION: &str = "attribute_not_exists(#a) OR #a < :below";

fn count_placeholders(attr: &str, below: i64, ttl: i64) -> (HashMap<String, String>, Attrs) {
    (
        HashMap::from([
            ("#a".to_owned(), attr.to_owned()),
            ("#v".to_owned(), "v".to_owned()),
            ("#t".to_owned(), "ttl".to_owned()),
        ]),
        HashMap::from([
            (":one".to_owned(), n(1)),
            (":ttl".to_owned(), n(ttl)),
            (":below".to_owned(), n(below)),
        ]),
    )
}

/// [`WriteOp::Update`] as DynamoDB takes it: `SET` each attribute and `ADD` one to the
/// version, on condition that the item exists and the op's condition holds.
struct UpdateParts {
    expression: String,
    condition: String,
    names: HashMap<String, String>,
    values: Attrs,
}

fn update_parts(set: &Map<String, Value>, c: Expr) -> Result<UpdateParts, StoreError> {
    let mut names = c.names.unwrap_or_default();
    let mut values = c.values.unwrap_or_default();
    names.insert("#v".to_owned(), "v".to_owned());
    values.insert(":one".to_owned(), n(1));
    let mut sets = Vec::with_capacity(set.len());
    for (i, (name, value)) in set.iter().enumerate() {
        names.insert(format!("#u{i}"), name.clone());
        values.insert(
            format!(":u{i}"),
            serde_dynamo::to_attribute_value(value)
                .map_err(|e| StoreError::InvalidItem(format!("attrs: {e}")))?,
        );
        sets.push(format!("#u{i} = :u{i}"));
    }
    let condition = match c.expression {
        Some(e) => format!("attribute_exists(pk) AND ({e})"),
        None => "attribute_exists(pk)".to_owned(),
    };
    Ok(UpdateParts {
        expression: format!("SET {} ADD #v :one", sets.join(", ")),
        condition,
        names,
        values,
    })
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        out.item.map(from_attrs).transpose()
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        item.validate()?;
        let c = condition_expr(condition);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attrs(&item)?))
            .set_condition_expression(c.expression)
            .set_expression_attribute_names(c.names)
            .set_expression_attribute_values(c.values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::ConditionFailed {
                    pk: item.pk,
                    sk: item.sk,
                })
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Condition,
    ) -> Result<Option<Item>, StoreError> {
        let c = condition_expr(condition);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .return_values(ReturnValue::AllOld)
            .set_condition_expression(c.expression)
            .set_expression_attribute_names(c.names)
            .set_expression_attribute_values(c.values)
            .send()
            .await;
        match result {
            Ok(out) => out.attributes.map(from_attrs).transpose(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::ConditionFailed {
                    pk: pk.to_owned(),
                    sk: sk.to_owned(),
                })
            }
            Err(e) => Err(sdk_error(e)),
        }
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let limit = query.checked_limit()?;
        let mut start = query.resume_after()?.map(|after| key(&query.pk, &after));
        let mut values = HashMap::from([(":pk".to_owned(), s(&query.pk))]);
        let key_condition = if query.sk_prefix.is_empty() {
            "pk = :pk"
        } else {
            values.insert(":p".to_owned(), s(&query.sk_prefix));
            "pk = :pk AND begins_with(sk, :p)"
        };
        // Ask for one more than the page so the cursor is only given when more items exist;
        // DynamoDB may stop early at 1 MB, so keep reading until the page is full or done.
        let mut items = Vec::with_capacity(limit + 1);
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_condition)
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .scan_index_forward(!query.descending)
                .limit((limit + 1 - items.len()) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for attrs in out.items.unwrap_or_default() {
                items.push(from_attrs(attrs)?);
            }
            match out.last_evaluated_key {
                Some(last) if items.len() <= limit => start = Some(last),
                _ => break,
            }
        }
        Ok(query.page_from(items, limit))
    }

    async fn scan(&self, cursor: Option<String>, limit: u32) -> Result<Page, StoreError> {
        let limit = crate::ports::store::scan_limit(limit)?;
        let mut start = match cursor.as_deref() {
            Some(c) => {
                let (pk, sk) = crate::ports::store::scan_resume_after(c)?;
                Some(key(&pk, &sk))
            }
            None => None,
        };
        // A Scan page may stop early (1 MB, or items filtered by nothing): read until the page
        // is full or the table ends. The cursor is the last returned item's key, which is
        // exactly what DynamoDB's ExclusiveStartKey resumes after.
        let mut items = Vec::with_capacity(limit);
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .limit((limit - items.len()) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for attrs in out.items.unwrap_or_default() {
                items.push(from_attrs(attrs)?);
            }
            match out.last_evaluated_key {
                Some(last) if items.len() < limit => start = Some(last),
                Some(_) => {
                    let cursor = items
                        .last()
                        .map(|i| crate::ports::store::scan_cursor(&i.pk, &i.sk));
                    return Ok(Page { items, cursor });
                }
                None => {
                    return Ok(Page {
                        items,
                        cursor: None,
                    });
                }
            }
        }
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        validate_transaction(&ops)?;
        // A count on its own is one UpdateItem: DynamoDB applies racing ADDs one after the
        // other, where racing transactions on one item would cancel each other.
        if let [
            WriteOp::Count {
                pk,
                sk,
                attr,
                below,
                ttl,
            },
        ] = ops.as_slice()
        {
            let (names, values) = count_placeholders(attr, *below, *ttl);
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .update_expression(COUNT_UPDATE)
                .condition_expression(COUNT_CONDITION)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                    Err(StoreError::TransactionConditionFailed {
                        index: 0,
                        pk: pk.clone(),
                        sk: sk.clone(),
                    })
                }
                // A transaction on the same counter was in flight: the caller may retry.
                Err(e) if e.code() == Some("TransactionConflictException") => {
                    Err(StoreError::Conflict)
                }
                Err(e) => Err(sdk_error(e)),
            };
        }
        let mut writes = Vec::with_capacity(ops.len());
        for op in &ops {
            let c = condition_expr(op.condition());
            let write = match op {
                WriteOp::Put { item, .. } => TransactWriteItem::builder().put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(to_attrs(item)?))
                        .set_condition_expression(c.expression)
                        .set_expression_attribute_names(c.names)
                        .set_expression_attribute_values(c.values)
                        .build()
                        .map_err(build_error)?,
                ),
                WriteOp::Delete { pk, sk, .. } => TransactWriteItem::builder().delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .set_condition_expression(c.expression)
                        .set_expression_attribute_names(c.names)
                        .set_expression_attribute_values(c.values)
                        .build()
                        .map_err(build_error)?,
                ),
                WriteOp::Count {
                    pk,
                    sk,
                    attr,
                    below,
                    ttl,
                } => {
                    let (names, values) = count_placeholders(attr, *below, *ttl);
                    TransactWriteItem::builder().update(
                        Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(pk, sk)))
                            .update_expression(COUNT_UPDATE)
                            .condition_expression(COUNT_CONDITION)
                            .set_expression_attribute_names(Some(names))
                            .set_expression_attribute_values(Some(values))
                            .build()
                            .map_err(build_error)?,
                    )
                }
                WriteOp::Update { pk, sk, set, .. } => {
                    let u = update_parts(set, c)?;
                    TransactWriteItem::builder().update(
                        Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(pk, sk)))
                            .update_expression(u.expression)
                            .condition_expression(u.condition)
                            .set_expression_attribute_names(Some(u.names))
                            .set_expression_attribute_values(Some(u.values))
                            .build()
                            .map_err(build_error)?,
                    )
                }
                WriteOp::Check { pk, sk, .. } => {
                    // DynamoDB requires an expression on a condition check; `None` means "any".
                    let c = if c.expression.is_none() {
                        Expr {
                            expression: Some(
                                "attribute_exists(pk) OR attribute_not_exists(pk)".into(),
                            ),
                            ..c
                        }
                    } else {
                        c
                    };
                    TransactWriteItem::builder().condition_check(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(pk, sk)))
                            .set_condition_expression(c.expression)
                            .set_expression_attribute_names(c.names)
                            .set_expression_attribute_values(c.values)
                            .build()
                            .map_err(build_error)?,
                    )
                }
            };
            writes.push(write.build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(cancel)) = err.as_service_error() {
            let reasons = cancel.cancellation_reasons();
            if let Some(index) = reasons
                .iter()
                .position(|r| r.code() == Some("ConditionalCheckFailed"))
                && let Some(op) = ops.get(index)
            {
                let (pk, sk) = op.key();
                return Err(StoreError::TransactionConditionFailed {
                    index,
                    pk: pk.to_owned(),
                    sk: sk.to_owned(),
                });
            }
            if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
                return Err(StoreError::Conflict);
            }
        }
        if err.code() == Some("TransactionConflictException") {
            return Err(StoreError::Conflict);
        }
        Err(sdk_error(err))
    }
}
