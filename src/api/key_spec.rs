//! What kind of key a `KmsKey` is (`keySpec`, `keyUsage`) and what each kind can do: which
//! usages a spec allows, which grant operations a usage allows, whether AWS rotates it. The
//! tables are AWS's ("Key spec reference" and "Grant operations" in the KMS developer guide);
//! the CEL rules that the apiserver checks at admission are generated from them, so the
//! schema and the operator's own check (`reconcile::validate`) cannot disagree.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::GrantOperation;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$doc])*
        #[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $wire)] $variant,)*
        }

        impl $name {
            /// Every value, in the schema's order.
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            /// The value's name on the KMS wire and in the manifest.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }
        }
    };
}

wire_enum! {
    /// The key's material (KMS `KeySpec`).
    KeySpec {
        #[default]
        SymmetricDefault = "SYMMETRIC_DEFAULT",
        Rsa2048 = "RSA_2048",
        Rsa3072 = "RSA_3072",
        Rsa4096 = "RSA_4096",
        EccNistP256 = "ECC_NIST_P256",
        EccNistP384 = "ECC_NIST_P384",
        EccNistP521 = "ECC_NIST_P521",
        EccSecgP256K1 = "ECC_SECG_P256K1",
        EccNistEdwards25519 = "ECC_NIST_EDWARDS25519",
        Hmac224 = "HMAC_224",
        Hmac256 = "HMAC_256",
        Hmac384 = "HMAC_384",
        Hmac512 = "HMAC_512",
        MlDsa44 = "ML_DSA_44",
        MlDsa65 = "ML_DSA_65",
        MlDsa87 = "ML_DSA_87",
        MlKem512 = "ML_KEM_512",
        MlKem768 = "ML_KEM_768",
        MlKem1024 = "ML_KEM_1024",
        Sm2 = "SM2",
    }
}

wire_enum! {
    /// What the key is for (KMS `KeyUsage`).
    KeyUsage {
        #[default]
        EncryptDecrypt = "ENCRYPT_DECRYPT",
        SignVerify = "SIGN_VERIFY",
        GenerateVerifyMac = "GENERATE_VERIFY_MAC",
        KeyAgreement = "KEY_AGREEMENT",
        EncapsulateDecapsulate = "ENCAPSULATE_DECAPSULATE",
    }
}

use GrantOperation as Op;
use KeySpec as S;
use KeyUsage as U;

/// Grant operations every key allows.
const ANY_KEY_OPERATIONS: &[Op] = &[Op::DescribeKey, Op::CreateGrant, Op::RetireGrant];

impl KeySpec {
    /// The usages AWS accepts for this spec (SM2 only in China Regions).
    pub fn usages(self) -> &'static [KeyUsage] {
        match self {
            S::SymmetricDefault => &[U::EncryptDecrypt],
            S::Rsa2048 | S::Rsa3072 | S::Rsa4096 => &[U::EncryptDecrypt, U::SignVerify],
            S::EccNistP256 | S::EccNistP384 | S::EccNistP521 => &[U::SignVerify, U::KeyAgreement],
            S::EccSecgP256K1 | S::EccNistEdwards25519 | S::MlDsa44 | S::MlDsa65 | S::MlDsa87 => {
                &[U::SignVerify]
            }
            S::Hmac224 | S::Hmac256 | S::Hmac384 | S::Hmac512 => &[U::GenerateVerifyMac],
            S::MlKem512 | S::MlKem768 | S::MlKem1024 => &[U::EncapsulateDecapsulate],
            S::Sm2 => &[U::EncryptDecrypt, U::SignVerify, U::KeyAgreement],
        }
    }

    /// Whether AWS rotates this key's material, automatically or on demand: only symmetric
    /// encryption keys.
    pub fn rotates(self) -> bool {
        self == S::SymmetricDefault
    }

    /// Whether grants on this key may carry encryption-context constraints: only symmetric
    /// encryption keys take an encryption context.
    pub fn takes_encryption_context(self) -> bool {
        self == S::SymmetricDefault
    }

    /// The operations a grant on a key of this spec and `usage` may allow.
    pub fn grant_operations(self, usage: KeyUsage) -> Vec<GrantOperation> {
        let own: &[Op] = match (self, usage) {
            (S::SymmetricDefault, _) => &[
                Op::Decrypt,
                Op::Encrypt,
                Op::GenerateDataKey,
                Op::GenerateDataKeyWithoutPlaintext,
                Op::GenerateDataKeyPair,
                Op::GenerateDataKeyPairWithoutPlaintext,
                Op::ReEncryptFrom,
                Op::ReEncryptTo,
            ],
            (_, U::EncryptDecrypt) => {
                &[Op::Decrypt, Op::Encrypt, Op::ReEncryptFrom, Op::ReEncryptTo, Op::GetPublicKey]
            }
            (_, U::SignVerify) => &[Op::Sign, Op::Verify, Op::GetPublicKey],
            (_, U::GenerateVerifyMac) => &[Op::GenerateMac, Op::VerifyMac],
            (_, U::KeyAgreement) => &[Op::DeriveSharedSecret, Op::GetPublicKey],
            (_, U::EncapsulateDecapsulate) => &[Op::Decapsulate, Op::Encapsulate, Op::GetPublicKey],
        };
        own.iter().chain(ANY_KEY_OPERATIONS).copied().collect()
    }
}

/// A CEL list literal of the names.
fn cel_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| format!("'{n}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// CEL (on the spec): the usages `self.keySpec` allows, as a list.
pub fn cel_usages_of_spec() -> String {
    let entries: Vec<String> = (KeySpec::ALL.iter())
        .map(|s| format!("'{}': {}", s.as_str(), cel_list(s.usages().iter().map(|u| u.as_str()))))
        .collect();
    format!("{{{}}}[self.keySpec]", entries.join(", "))
}

/// The operations a grant allows for each kind of key, by `<keySpec>/<keyUsage>` for every
/// valid pair.
fn operations_by_pair() -> Vec<(String, Vec<GrantOperation>)> {
    let pairs = KeySpec::ALL.iter().flat_map(|s| s.usages().iter().map(move |u| (*s, *u)));
    pairs.map(|(s, u)| (format!("{}/{}", s.as_str(), u.as_str()), s.grant_operations(u))).collect()
}

/// CEL (on the spec): the grant operations the key's spec and usage allow, as a list.
pub fn cel_grant_operations() -> String {
    let entries: Vec<String> = (operations_by_pair().into_iter())
        .map(|(pair, ops)| format!("'{pair}': {}", cel_list(ops.iter().map(|o| o.as_str()))))
        .collect();
    format!("{{{}}}[self.keySpec + '/' + self.keyUsage]", entries.join(", "))
}

/// CEL (on the spec): the grant operations the key's spec and usage allow, as one string.
pub fn cel_grant_operations_text() -> String {
    let entries: Vec<String> = (operations_by_pair().into_iter())
        .map(|(pair, ops)| {
            let names: Vec<&str> = ops.iter().map(|o| o.as_str()).collect();
            format!("'{pair}': '{}'", names.join(", "))
        })
        .collect();
    format!("{{{}}}[self.keySpec + '/' + self.keyUsage]", entries.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_has_a_usage_and_every_usage_a_spec() {
        for spec in KeySpec::ALL {
            assert!(!spec.usages().is_empty(), "{spec:?}");
        }
        for usage in KeyUsage::ALL {
            assert!(KeySpec::ALL.iter().any(|s| s.usages().contains(usage)), "{usage:?}");
        }
    }

    #[test]
    fn the_default_key_is_a_symmetric_encryption_key_that_rotates() {
        assert_eq!((KeySpec::default(), KeyUsage::default()), (S::SymmetricDefault, U::EncryptDecrypt));
        assert!(KeySpec::default().rotates());
        assert!(KeySpec::ALL.iter().filter(|s| s.rotates()).eq([&S::SymmetricDefault]));
    }

    #[test]
    fn only_symmetric_keys_make_data_keys_and_only_asymmetric_ones_show_a_public_key() {
        let symmetric = S::SymmetricDefault.grant_operations(U::EncryptDecrypt);
        assert!(symmetric.contains(&Op::GenerateDataKey) && !symmetric.contains(&Op::GetPublicKey));
        let rsa = S::Rsa2048.grant_operations(U::EncryptDecrypt);
        assert!(!rsa.contains(&Op::GenerateDataKey) && rsa.contains(&Op::GetPublicKey));
        let hmac = S::Hmac256.grant_operations(U::GenerateVerifyMac);
        assert!(hmac.contains(&Op::GenerateMac) && !hmac.contains(&Op::Decrypt));
    }

    #[test]
    fn the_cel_tables_name_every_valid_pair_and_only_those() {
        let usages = cel_usages_of_spec();
        assert!(usages.contains("'ML_DSA_44': ['SIGN_VERIFY']"), "{usages}");
        let ops = cel_grant_operations();
        assert!(
            ops.contains("'ECC_NIST_P256/KEY_AGREEMENT': ['DeriveSharedSecret', 'GetPublicKey'"),
            "{ops}"
        );
        assert!(!ops.contains("'HMAC_256/ENCRYPT_DECRYPT'"), "{ops}");
        assert_eq!(ops.matches("': [").count(), KeySpec::ALL.iter().map(|s| s.usages().len()).sum::<usize>());
    }
}
