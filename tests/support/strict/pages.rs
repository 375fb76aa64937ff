//! Pagination. KMS's List* operations answer at most `Limit` items (or a default) with
//! `Truncated: true` and an opaque `NextMarker` for the rest; the Resource Groups Tagging API
//! answers `ResourcesPerPage` items and a `PaginationToken` (empty when done). moto ignores
//! `Limit` and never paginates, so a client that forgets the marker passes against moto and
//! misses items against AWS. The strict layer asks moto for the whole list (without the paging
//! parameters) and serves it in pages of `page_size` items (or `Limit`, if smaller), so every
//! list is paged in the tests. A marker it did not issue → `InvalidMarkerException`
//! (tagging API: `InvalidParameterException`); a `Limit` out of range → `ValidationException`.

use serde_json::{Map, Value};

use super::Refusal;

/// How one list operation pages.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    pub operation: &'static str,
    /// The array in the response.
    pub items: &'static str,
    /// Request: the page size and where to go on.
    pub limit: &'static str,
    pub marker: &'static str,
    /// Response: where to go on; KMS also says `Truncated`.
    pub next: &'static str,
    pub max_limit: i64,
    pub tagging: bool,
}

const fn kms(operation: &'static str, items: &'static str, max_limit: i64) -> Paging {
    Paging {
        operation,
        items,
        limit: "Limit",
        marker: "Marker",
        next: "NextMarker",
        max_limit,
        tagging: false,
    }
}

pub const PAGED: [Paging; 6] = [
    kms("ListKeys", "Keys", 1000),
    kms("ListAliases", "Aliases", 100),
    kms("ListResourceTags", "Tags", 50),
    kms("ListGrants", "Grants", 100),
    kms("ListKeyRotations", "Rotations", 1000),
    Paging {
        operation: "GetResources",
        items: "ResourceTagMappingList",
        limit: "ResourcesPerPage",
        marker: "PaginationToken",
        next: "PaginationToken",
        max_limit: 100,
        tagging: true,
    },
];

pub fn paging_for(operation: &str) -> Option<Paging> {
    PAGED.iter().find(|p| p.operation == operation).copied()
}

/// ListAliases with a `KeyId` answers only that key's aliases in AWS; moto adds the
/// AWS-managed `alias/aws/*` ones whatever the key.
pub fn keep_aliases_of_the_key_asked_for(paging: &Paging, body: &Value, full: &mut Value) {
    let Some(key) = body.get("KeyId").and_then(Value::as_str).filter(|_| paging.operation == "ListAliases")
    else {
        return;
    };
    let key_id = key.rsplit_once(":key/").map_or(key, |(_, id)| id).to_owned();
    if let Some(items) = full[paging.items].as_array_mut() {
        items.retain(|alias| alias["TargetKeyId"].as_str() == Some(key_id.as_str()));
    }
}

/// Where the requested page starts and how long it is, or why the request is refused.
pub fn requested(paging: &Paging, body: &Value, page_size: usize) -> Result<(usize, usize), Refusal> {
    let mut size = page_size.max(1);
    if let Some(limit) = body.get(paging.limit).and_then(Value::as_i64) {
        if !(1..=paging.max_limit).contains(&limit) {
            return Err(bad_limit(paging, limit));
        }
        size = size.min(limit as usize);
    }
    let start = match body.get(paging.marker).and_then(Value::as_str).filter(|m| !m.is_empty()) {
        None => 0,
        Some(marker) => decode(paging, marker).ok_or_else(|| bad_marker(paging))?,
    };
    Ok((start, size))
}

fn bad_limit(paging: &Paging, limit: i64) -> Refusal {
    let (code, field) = if paging.tagging {
        ("InvalidParameterException", "resourcesPerPage")
    } else {
        ("ValidationException", "limit")
    };
    Refusal::new(
        code,
        format!(
            "1 validation error detected: Value '{limit}' at '{field}' failed to satisfy constraint: \
             Member must have value between 1 and {}",
            paging.max_limit
        ),
    )
}

fn bad_marker(paging: &Paging) -> Refusal {
    if paging.tagging {
        Refusal::new("InvalidParameterException", "The PaginationToken is not valid")
    } else {
        Refusal::new("InvalidMarkerException", "The request was rejected because the marker is not valid")
    }
}

/// The request as sent to moto: without the paging parameters, so moto answers everything.
pub fn whole_list_request(paging: &Paging, body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        object.remove(paging.limit);
        object.remove(paging.marker);
    }
    body
}

/// The page `[start, start + size)` of moto's whole-list answer `full`, in the operation's
/// response form.
pub fn page(paging: &Paging, full: &Value, start: usize, size: usize) -> Value {
    let items = full[paging.items].as_array().cloned().unwrap_or_default();
    let end = (start + size).min(items.len());
    let more = end < items.len();
    let mut out: Map<String, Value> = full.as_object().cloned().unwrap_or_default();
    out.insert(paging.items.to_owned(), Value::Array(items[start.min(end)..end].to_vec()));
    out.remove(paging.next);
    if paging.tagging {
        let token = if more { encode(paging, end) } else { String::new() };
        out.insert(paging.next.to_owned(), Value::String(token));
    } else {
        out.insert("Truncated".to_owned(), Value::Bool(more));
        if more {
            out.insert(paging.next.to_owned(), Value::String(encode(paging, end)));
        }
    }
    Value::Object(out)
}

/// An opaque marker for "go on at item `offset` of `paging.operation`": hex of a tagged text.
fn encode(paging: &Paging, offset: usize) -> String {
    let text = format!("strict-kms/{}/{offset}", paging.operation);
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode(paging: &Paging, marker: &str) -> Option<usize> {
    if !marker.len().is_multiple_of(2) || !marker.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..marker.len()).step_by(2).map(|i| u8::from_str_radix(&marker[i..i + 2], 16).ok()).collect();
    let text = String::from_utf8(bytes?).ok()?;
    let rest = text.strip_prefix("strict-kms/")?.strip_prefix(paging.operation)?.strip_prefix('/')?;
    rest.parse().ok()
}
