use thiserror::Error;

/// What kind of failure a KMS call met; it decides how the reconciler reacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Over a request quota: back off and retry.
    Throttled,
    /// 5xx, timeouts, dropped connections: back off and retry.
    Transient,
    /// The key, alias or grant does not exist.
    NotFound,
    /// The key's state does not allow the call now (disabled, pending deletion, a rotation in
    /// progress or due within minutes): it may once the state changes.
    InvalidState,
    /// The alias (or another name) is already taken.
    AlreadyExists,
    /// The caller lacks permission, or its credentials are wrong.
    AccessDenied,
    /// AWS refused the input (malformed policy, bad principal, quota reached): retrying the
    /// same request cannot succeed.
    Rejected,
}

/// A failed KMS call.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("KMS {operation} failed ({}): {message}", .code.as_deref().unwrap_or("no response"))]
pub struct KmsError {
    pub operation: &'static str,
    pub kind: ErrorKind,
    /// The AWS error code, when KMS answered.
    pub code: Option<String>,
    pub message: String,
}

impl KmsError {
    pub fn new(operation: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { operation, kind, code: None, message: message.into() }
    }

    /// An error KMS answered with `code` and HTTP `status`.
    pub fn from_response(
        operation: &'static str,
        code: Option<&str>,
        status: u16,
        message: Option<&str>,
    ) -> Self {
        Self {
            operation,
            kind: classify(code, status),
            code: code.map(str::to_owned),
            message: message.unwrap_or("no message").to_owned(),
        }
    }
}

impl KmsError {
    /// Whether AWS refused the call for want of permission, or because a policy names a
    /// principal it does not know yet. Both can be IAM catching up (a new key's tags, a new
    /// role), so they are waited out for a while before being reported.
    pub fn is_permission_refusal(&self) -> bool {
        let names_principal = self.code.as_deref() == Some("MalformedPolicyDocumentException")
            && self.message.to_ascii_lowercase().contains("principal");
        self.kind == ErrorKind::AccessDenied || names_principal
    }
}

/// Classifies an answer from KMS by its error code, falling back on the HTTP status.
pub fn classify(code: Option<&str>, status: u16) -> ErrorKind {
    match code.unwrap_or_default() {
        "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException" => ErrorKind::Throttled,
        "KMSInternalException"
        | "DependencyTimeoutException"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "RequestTimeout" => ErrorKind::Transient,
        "NotFoundException" => ErrorKind::NotFound,
        // ConflictException: RotateKeyOnDemand while a rotation runs or is about to.
        "KMSInvalidStateException" | "DisabledException" | "ConflictException" => ErrorKind::InvalidState,
        "AlreadyExistsException" => ErrorKind::AlreadyExists,
        "AccessDeniedException"
        | "NotAuthorizedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "IncompleteSignature" => ErrorKind::AccessDenied,
        _ if status >= 500 => ErrorKind::Transient,
        _ => ErrorKind::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_error_codes_map_to_the_reaction_they_need() {
        let table = [
            (Some("ThrottlingException"), 400, ErrorKind::Throttled),
            (Some("KMSInternalException"), 500, ErrorKind::Transient),
            (Some("DependencyTimeoutException"), 503, ErrorKind::Transient),
            (None, 503, ErrorKind::Transient),
            (Some("SomethingNew"), 502, ErrorKind::Transient),
            (Some("NotFoundException"), 400, ErrorKind::NotFound),
            (Some("KMSInvalidStateException"), 400, ErrorKind::InvalidState),
            (Some("DisabledException"), 400, ErrorKind::InvalidState),
            (Some("ConflictException"), 400, ErrorKind::InvalidState),
            (Some("AlreadyExistsException"), 400, ErrorKind::AlreadyExists),
            (Some("AccessDeniedException"), 400, ErrorKind::AccessDenied),
            (Some("NotAuthorizedException"), 400, ErrorKind::AccessDenied),
            (Some("MalformedPolicyDocumentException"), 400, ErrorKind::Rejected),
            (Some("ValidationException"), 400, ErrorKind::Rejected),
            // A policy over 32 KiB or a full account: retrying changes nothing.
            (Some("LimitExceededException"), 400, ErrorKind::Rejected),
            (Some("InvalidArnException"), 400, ErrorKind::Rejected),
            (None, 400, ErrorKind::Rejected),
        ];
        for (code, status, want) in table {
            assert_eq!(classify(code, status), want, "code {code:?} status {status}");
        }
    }

    #[test]
    fn denials_and_unknown_principals_are_permission_refusals() {
        let denied = KmsError::from_response("GetKeyPolicy", Some("AccessDeniedException"), 400, None);
        let principal = KmsError::from_response(
            "PutKeyPolicy",
            Some("MalformedPolicyDocumentException"),
            400,
            Some("Policy contains a statement with one or more invalid principals."),
        );
        let syntax = KmsError::from_response(
            "PutKeyPolicy",
            Some("MalformedPolicyDocumentException"),
            400,
            Some("bad JSON"),
        );
        assert!(denied.is_permission_refusal());
        assert!(principal.is_permission_refusal());
        assert!(!syntax.is_permission_refusal());
    }

    #[test]
    fn the_message_names_the_operation_and_the_aws_code() {
        let err = KmsError::from_response(
            "PutKeyPolicy",
            Some("MalformedPolicyDocumentException"),
            400,
            Some("bad principal"),
        );
        assert_eq!(
            err.to_string(),
            "KMS PutKeyPolicy failed (MalformedPolicyDocumentException): bad principal"
        );
    }
}
