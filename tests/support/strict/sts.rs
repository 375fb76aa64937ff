//! AWS STS AssumeRole, as the operator meets it when a KmsAccount maps a namespace to a role in
//! another account. moto assumes any role with any external ID and no trust policy; AWS lets
//! the caller assume only a role whose trust policy names it, with the external ID that trust
//! policy requires (`sts:ExternalId`), else `AccessDenied` (HTTP 403, the query protocol's XML
//! error). The layer models the trust policies as a list of roles that trust the operator
//! (`StrictConfig::roles`), and learns from moto's answers which access key belongs to which
//! assumed role: the KMS calls signed with it are evaluated as that role, in its account, against
//! the identity policy instantiated for that account (deploy/iam-policy.json, as the role
//! template in deploy/ says to attach it).

use std::collections::HashMap;

/// A role in some account whose trust policy lets the operator assume it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedRole {
    pub role_arn: String,
    /// The external ID its trust policy requires, if any.
    pub external_id: Option<String>,
}

/// Who a request comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub account: String,
    /// The caller's ARN (`arn:aws:sts::<account>:assumed-role/<role>/<session>` for a role).
    pub caller: String,
}

/// The parameters of a query-protocol request body (`Action=AssumeRole&RoleArn=...`).
pub fn form(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// AWS's trust check of an AssumeRole by `caller`: the role must trust it, with the external
/// ID the trust policy requires (if it requires one).
pub fn check_assume_role(
    params: &HashMap<String, String>,
    roles: &[TrustedRole],
    caller: &str,
) -> Result<(), String> {
    let role_arn = params.get("RoleArn").map(String::as_str).unwrap_or_default();
    let trusted = roles.iter().find(|r| r.role_arn == role_arn);
    // An external ID the trust policy does not ask for is ignored, as AWS does.
    let external_ok = trusted
        .is_some_and(|r| r.external_id.is_none() || r.external_id.as_ref() == params.get("ExternalId"));
    match external_ok {
        true => Ok(()),
        false => Err(format!(
            "User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        )),
    }
}

/// The access key ID and the assumed role's ARN in moto's AssumeRole answer.
pub fn learned_credentials(xml: &str) -> Option<(String, String)> {
    let access_key = between(xml, "<AccessKeyId>", "</AccessKeyId>")?;
    let user = between(xml, "<AssumedRoleUser>", "</AssumedRoleUser>")?;
    let arn = between(user, "<Arn>", "</Arn>")?;
    Some((access_key.to_owned(), arn.to_owned()))
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = from + text[from..].find(end)?;
    Some(&text[from..to])
}

/// The account of an STS ARN (`arn:aws:sts::<account>:assumed-role/...`).
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// An STS error in the query protocol's XML form (HTTP 403 for AccessDenied).
pub fn error(code: &str, message: &str) -> Vec<u8> {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>strict-sts</RequestId></ErrorResponse>"
    );
    format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nx-amzn-RequestId: strict-sts\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
