//! Reads a table's DynamoDB stream over the wire (moto, DynamoDB Local or AWS without
//! signature checks), so the sealer is tested with the stream's own record JSON: the payload
//! Lambda hands the sealer function is these records in `{"Records": [...]}`, each with its
//! `eventSourceARN`. A tiny HTTP/1.0 client on `std::net` keeps the tests free of another SDK.
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Mutex;

pub struct StreamReader {
    host: String,
    stream_arn: String,
    /// Each shard's next iterator, once read.
    iterators: Mutex<Vec<(String, Option<String>)>>,
}

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

fn call(host: &str, target: &str, body: &Value) -> Value {
    let body = body.to_string();
    let mut conn = TcpStream::connect(host).unwrap();
    write!(
        conn,
        "POST / HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.0\r\n\
         X-Amz-Target: {target}\r\nX-Amz-Date: 20261202T000000Z\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.") && head[9..].starts_with("200"),
        "{target}: {text}"
    );
    serde_json::from_str(body).unwrap()
}

impl StreamReader {
    /// The stream of `table`, from its first record.
    pub fn new(table: &str) -> Self {
        let url = endpoint();
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let described = call(
            &host,
            "DynamoDB_20120810.DescribeTable",
            &json!({ "TableName": table }),
        );
        let stream_arn = described["Table"]["LatestStreamArn"]
            .as_str()
            .expect("the table has a stream")
            .to_owned();
        Self {
            host,
            stream_arn,
            iterators: Mutex::new(Vec::new()),
        }
    }

    /// Every record written since the last call, in each shard's order.
    pub fn records(&self) -> Vec<Value> {
        let shards = call(
            &self.host,
            "DynamoDBStreams_20120810.DescribeStream",
            &json!({ "StreamArn": self.stream_arn }),
        );
        let mut iterators = self.iterators.lock().unwrap();
        for shard in shards["StreamDescription"]["Shards"].as_array().unwrap() {
            let id = shard["ShardId"].as_str().unwrap().to_owned();
            if !iterators.iter().any(|(s, _)| *s == id) {
                let it = call(
                    &self.host,
                    "DynamoDBStreams_20120810.GetShardIterator",
                    &json!({ "StreamArn": self.stream_arn, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON" }),
                );
                iterators.push((id, it["ShardIterator"].as_str().map(str::to_owned)));
            }
        }
        let mut out = Vec::new();
        for (_, iterator) in iterators.iter_mut() {
            // A shard is read until a call returns nothing new (DynamoDB Local and AWS may
            // return empty pages before the end).
            for _ in 0..100 {
                let Some(it) = iterator.clone() else { break };
                let page = call(
                    &self.host,
                    "DynamoDBStreams_20120810.GetRecords",
                    &json!({ "ShardIterator": it, "Limit": 1000 }),
                );
                let records = page["Records"].as_array().cloned().unwrap_or_default();
                *iterator = page["NextShardIterator"].as_str().map(str::to_owned);
                let empty = records.is_empty();
                out.extend(records);
                if empty {
                    break;
                }
            }
        }
        out
    }

    /// `records` as the event Lambda hands a function its event source mapping drives.
    pub fn lambda_event(&self, records: Vec<Value>) -> Value {
        let records: Vec<Value> = records
            .into_iter()
            .map(|mut r| {
                r["eventSourceARN"] = json!(self.stream_arn);
                r
            })
            .collect();
        json!({ "Records": records })
    }
}
