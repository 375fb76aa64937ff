//! What a principal in a key policy or grant names, as far as the guardrails care: anyone, an
//! account's root, an identity in an account, or an AWS service.

/// A principal, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// `"*"`: anyone, in any account.
    Anyone,
    /// The account itself (`123456789012` or `arn:aws:iam::123456789012:root`).
    Root { account: String },
    /// A user, role, or session in an account.
    Identity { account: String, arn: String },
    /// An AWS service (`logs.amazonaws.com`).
    Service(String),
    /// Something the guardrails cannot place in an account (federated users, canonical IDs,
    /// malformed ARNs).
    Unknown(String),
}

/// Classifies an AWS principal (`Principal.AWS` in a policy, or a grant's principal).
pub fn aws_principal(text: &str) -> Principal {
    if text == "*" {
        return Principal::Anyone;
    }
    if is_account_id(text) {
        return Principal::Root { account: text.to_owned() };
    }
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam" | "sts", "", account, resource]
            if partition.starts_with("aws") && is_account_id(account) =>
        {
            match *resource {
                "root" => Principal::Root { account: (*account).to_owned() },
                _ => Principal::Identity { account: (*account).to_owned(), arn: text.to_owned() },
            }
        }
        _ => Principal::Unknown(text.to_owned()),
    }
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_forms_are_told_apart() {
        let table = [
            ("*", Principal::Anyone),
            ("111122223333", Principal::Root { account: "111122223333".into() }),
            ("arn:aws:iam::111122223333:root", Principal::Root { account: "111122223333".into() }),
            (
                "arn:aws:iam::111122223333:role/app",
                Principal::Identity {
                    account: "111122223333".into(),
                    arn: "arn:aws:iam::111122223333:role/app".into(),
                },
            ),
            (
                "arn:aws-us-gov:sts::111122223333:assumed-role/app/s",
                Principal::Identity {
                    account: "111122223333".into(),
                    arn: "arn:aws-us-gov:sts::111122223333:assumed-role/app/s".into(),
                },
            ),
            ("arn:aws:iam::1111:role/short", Principal::Unknown("arn:aws:iam::1111:role/short".into())),
            ("AROAEXAMPLEID", Principal::Unknown("AROAEXAMPLEID".into())),
        ];
        for (text, want) in table {
            assert_eq!(aws_principal(text), want, "{text}");
        }
    }
}
