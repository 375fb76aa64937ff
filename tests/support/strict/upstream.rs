//! The wire between the strict layer and moto, and the answers it writes to the client.
//! Requests are HTTP/1.1 with a Content-Length body (what the SDKs and moto send), each on a
//! fresh connection. Side calls (DescribeKey, ListResourceTags, ...) are made here, directly on
//! moto: the proxy never sees them, so they are not in its per-operation call counts. KMS errors
//! are answered in the JSON 1.1 wire form: HTTP 400, `x-amzn-ErrorType: <Code>`, body
//! `{"__type":"<Code>","message":"..."}`.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 message: the head (request or status line and headers, no blank line) and body.
#[derive(Clone, Debug)]
pub struct Message {
    pub head: String,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    /// The status code of a response.
    pub fn status(&self) -> u16 {
        self.head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    pub fn ok(&self) -> bool {
        self.status() == 200
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The same message with `body` (and its Content-Length) instead.
    pub fn with_body(&self, body: Vec<u8>) -> Message {
        let lines = self.head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"));
        let mut head: Vec<String> = lines.map(str::to_owned).collect();
        head.push(format!("Content-Length: {}", body.len()));
        Message { head: head.join("\r\n"), body }
    }

    /// The bytes to send to the client: moto's `Connection` header dropped, as the proxy keeps
    /// the client's connection open.
    pub fn to_client(&self) -> Vec<u8> {
        let head = self.head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("connection:"));
        let mut out = head.collect::<Vec<_>>().join("\r\n").into_bytes();
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads one HTTP/1.1 message with a Content-Length body.
pub async fn read_message(stream: &mut TcpStream) -> Option<Message> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut message = Message { head, body: buf[head_end + 4..].to_vec() };
    let length: usize = message.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while message.body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        message.body.extend_from_slice(&chunk[..n]);
    }
    message.body.truncate(length);
    Some(message)
}

/// moto's address, and where a side call gets its region and account from.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub addr: String,
}

impl Upstream {
    /// Sends `request` to moto unchanged; moto's response.
    pub async fn send(&self, request: &Message) -> Option<Message> {
        let mut server = TcpStream::connect(&self.addr).await.ok()?;
        let mut bytes = request.head.clone().into_bytes();
        bytes.extend_from_slice(b"\r\n\r\n");
        bytes.extend_from_slice(&request.body);
        server.write_all(&bytes).await.ok()?;
        read_message(&mut server).await
    }

    /// A KMS call of the strict layer's own, in the region and account of `like` (the client's
    /// request), on a fresh connection that the proxy does not count.
    pub async fn kms(&self, like: &Message, operation: &str, body: Value) -> Option<Message> {
        let region = region_of(like);
        // moto tells accounts apart by the access key (an assumed role's is its account's).
        let access_key = access_key_of(like).unwrap_or_else(|| "testing".to_owned());
        let token = like.header("x-amz-security-token").map(|t| format!("\r\nX-Amz-Security-Token: {t}"));
        let account = like.header("x-moto-account-id").map(|a| format!("\r\nx-moto-account-id: {a}"));
        let body = body.to_string().into_bytes();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             X-Amz-Target: TrentService.{operation}\r\nX-Amz-Date: 20260101T000000Z\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential={access_key}/20260101/{region}/kms/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-target, Signature=00{account}{token}\r\n\
             Content-Length: {length}\r\nConnection: close",
            addr = self.addr,
            account = account.unwrap_or_default(),
            token = token.unwrap_or_default(),
            length = body.len(),
        );
        self.send(&Message { head, body }).await
    }
}

/// moto's Region when a request names none (the tests' clients use it too).
const DEFAULT_REGION: &str = "us-east-1";

/// The access key ID of a request's SigV4 credential (`Credential=AKID/...`).
pub fn access_key_of(request: &Message) -> Option<String> {
    let scope = request.header("authorization")?.split("Credential=").nth(1)?;
    scope.split('/').next().filter(|k| !k.is_empty()).map(str::to_owned)
}

/// The Region in a request's SigV4 credential scope (`Credential=AK/date/REGION/service/...`).
pub fn region_of(request: &Message) -> String {
    let scope = request.header("authorization").and_then(|auth| auth.split("Credential=").nth(1));
    let region = scope.and_then(|s| s.split('/').nth(2)).filter(|r| !r.is_empty());
    region.unwrap_or(DEFAULT_REGION).to_owned()
}

/// A KMS error in JSON 1.1 wire form.
pub fn error(code: &str, message: &str) -> Vec<u8> {
    let body = json!({"__type": code, "message": message}).to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {code}\r\n\
         x-amzn-RequestId: strict-kms\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A 200 answer with a JSON body, as KMS (and the tagging API) send it.
pub fn ok_json(body: &Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: strict-kms\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
