//! Key specs and usages as AWS checks them, which moto hardly does (the CreateKey and
//! CreateGrant API references, "Key spec reference" and "Grant operations" in the KMS developer
//! guide). Written from those pages, not from the operator's tables, so that a mistake in the
//! operator's shows up here:
//! - CreateKey: the `KeyUsage` (default ENCRYPT_DECRYPT) must suit the `KeySpec` (default
//!   SYMMETRIC_DEFAULT) → `ValidationException`;
//! - CreateGrant: every operation must suit the key, and encryption-context constraints are
//!   only for symmetric encryption keys → `ValidationException`;
//! - RotateKeyOnDemand: only symmetric encryption keys → `UnsupportedOperationException`; at
//!   most 25 per key (counted by the pipeline) → `LimitExceededException`;
//! - key specs moto 5.2.5 does not know (ECC_NIST_EDWARDS25519, ML_DSA_*, ML_KEM_*) are made in
//!   moto with a stand-in spec, and every answer that describes the key reports the real one.

use serde_json::Value;

use super::{KeyInfo, Refusal};

/// The spec moto creates in place of one it does not know.
const STAND_IN: &str = "ECC_NIST_P256";

/// Key specs moto 5.2.5 refuses.
const UNKNOWN_TO_MOTO: &[&str] = &[
    "ECC_NIST_EDWARDS25519",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
    "ML_KEM_512",
    "ML_KEM_768",
    "ML_KEM_1024",
];

/// The usages AWS accepts for `spec`; empty for a spec AWS does not have.
fn usages(spec: &str) -> &'static [&'static str] {
    match spec {
        "SYMMETRIC_DEFAULT" => &["ENCRYPT_DECRYPT"],
        "RSA_2048" | "RSA_3072" | "RSA_4096" => &["ENCRYPT_DECRYPT", "SIGN_VERIFY"],
        "ECC_NIST_P256" | "ECC_NIST_P384" | "ECC_NIST_P521" => &["SIGN_VERIFY", "KEY_AGREEMENT"],
        "ECC_SECG_P256K1" | "ECC_NIST_EDWARDS25519" | "ML_DSA_44" | "ML_DSA_65" | "ML_DSA_87" => {
            &["SIGN_VERIFY"]
        }
        "HMAC_224" | "HMAC_256" | "HMAC_384" | "HMAC_512" => &["GENERATE_VERIFY_MAC"],
        "ML_KEM_512" | "ML_KEM_768" | "ML_KEM_1024" => &["ENCAPSULATE_DECAPSULATE"],
        "SM2" => &["ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT"],
        _ => &[],
    }
}

/// Checks CreateKey's spec and usage; when moto does not know the spec, the body to send it
/// instead and the real spec.
pub fn check_create(body: &Value) -> Result<Option<(Value, String)>, Refusal> {
    let spec = body["KeySpec"].as_str().unwrap_or("SYMMETRIC_DEFAULT");
    let usage = body["KeyUsage"].as_str().unwrap_or("ENCRYPT_DECRYPT");
    let allowed = usages(spec);
    if allowed.is_empty() {
        return Err(Refusal::new(
            "ValidationException",
            format!("1 validation error detected: Value '{spec}' at 'keySpec' failed to satisfy constraint"),
        ));
    }
    if !allowed.contains(&usage) {
        return Err(Refusal::new(
            "ValidationException",
            format!("KeyUsage {usage} is not compatible with KeySpec {spec}"),
        ));
    }
    if !UNKNOWN_TO_MOTO.contains(&spec) {
        return Ok(None);
    }
    let mut stand_in = body.clone();
    stand_in["KeySpec"] = Value::from(STAND_IN);
    Ok(Some((stand_in, spec.to_owned())))
}

/// The operations a grant may allow on a key of `spec` and `usage`.
fn grant_operations(spec: &str, usage: &str) -> Vec<&'static str> {
    let mut ops = vec!["DescribeKey", "CreateGrant", "RetireGrant"];
    ops.extend_from_slice(match (spec, usage) {
        ("SYMMETRIC_DEFAULT", _) => &[
            "Decrypt",
            "Encrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
            "ReEncryptFrom",
            "ReEncryptTo",
        ],
        (_, "ENCRYPT_DECRYPT") => &["Decrypt", "Encrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey"],
        (_, "SIGN_VERIFY") => &["Sign", "Verify", "GetPublicKey"],
        (_, "GENERATE_VERIFY_MAC") => &["GenerateMac", "VerifyMac"],
        (_, "KEY_AGREEMENT") => &["DeriveSharedSecret", "GetPublicKey"],
        (_, "ENCAPSULATE_DECAPSULATE") => &["Encapsulate", "Decapsulate", "GetPublicKey"],
        _ => &[],
    });
    ops
}

/// CreateGrant on `key`: operations the key can do, and an encryption context only on a
/// symmetric encryption key.
pub fn check_grant(body: &Value, key: &KeyInfo) -> Result<(), Refusal> {
    let allowed = grant_operations(&key.spec, &key.usage);
    let ops = body["Operations"].as_array().into_iter().flatten().filter_map(Value::as_str);
    if let Some(op) = ops.into_iter().find(|op| !allowed.contains(op)) {
        return Err(Refusal::new(
            "ValidationException",
            format!("Grant operation {op} is not valid for a {} {} KMS key", key.spec, key.usage),
        ));
    }
    let constraints = &body["Constraints"];
    let has_context = ["EncryptionContextEquals", "EncryptionContextSubset"]
        .iter()
        .any(|c| constraints[c].as_object().is_some_and(|m| !m.is_empty()));
    if has_context && key.spec != "SYMMETRIC_DEFAULT" {
        return Err(Refusal::new(
            "ValidationException",
            format!("Encryption context grant constraints are not supported for a {} KMS key", key.spec),
        ));
    }
    Ok(())
}

/// On-demand rotations AWS allows per key, ever.
pub const MAX_ON_DEMAND_ROTATIONS: usize = 25;

/// RotateKeyOnDemand: symmetric encryption keys only.
pub fn check_on_demand_rotation(key: &KeyInfo) -> Result<(), Refusal> {
    if key.spec == "SYMMETRIC_DEFAULT" {
        return Ok(());
    }
    Err(Refusal::new(
        "UnsupportedOperationException",
        format!("{} key spec is {} which is not valid for this operation.", key.arn, key.spec),
    ))
}

/// `metadata` (a KeyMetadata object) with the real spec of a key moto holds under a stand-in.
pub fn report_real_spec(metadata: &mut Value, real: &str) {
    metadata["KeySpec"] = Value::from(real);
    metadata["CustomerMasterKeySpec"] = Value::from(real);
}
