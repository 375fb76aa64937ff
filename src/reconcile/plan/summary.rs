//! One short line per planned call, for status `plan` of an `ObserveOnly` object. Lines name
//! what changes (tag keys, alias and grant names, policy statement Sids), never values: a
//! status is readable by anyone who may read the object.

use super::Action;

/// Status `plan` lists at most this many lines; the rest are counted in the last one.
pub const MAX_PLAN_LINES: usize = 20;

/// What `action` would change, as a line; `None` for a status write alone.
pub fn summary(action: &Action) -> Option<String> {
    let line = match action {
        Action::CreateKey { key, .. } => format!("create a {} key", key.key_spec),
        Action::Adopt { .. } => "tag the key as this object's (adopt it)".to_owned(),
        Action::RecordKey(_) => return None,
        Action::CancelDeletion => "cancel the key's scheduled deletion".to_owned(),
        Action::SetEnabled(true) => "enable the key".to_owned(),
        Action::SetEnabled(false) => "disable the key".to_owned(),
        Action::UpdateDescription(_) => "update the description".to_owned(),
        Action::PutPolicy { statements, .. } if statements.is_empty() => "put the key policy".to_owned(),
        Action::PutPolicy { statements, .. } => {
            format!("put the key policy (statements differing: {})", statements.join(", "))
        }
        Action::Tag(tags) => format!("set tags {}", tags.keys().cloned().collect::<Vec<_>>().join(", ")),
        Action::Untag(keys) => format!("remove tags {}", keys.join(", ")),
        Action::CreateAlias(alias) => format!("create alias {alias}"),
        Action::DeleteAlias(alias) => format!("delete alias {alias}"),
        Action::SetRotation { enabled: true, period_days: Some(days) } => {
            format!("enable key rotation every {days} days")
        }
        Action::SetRotation { enabled: true, period_days: None } => "enable key rotation".to_owned(),
        Action::SetRotation { enabled: false, .. } => "disable key rotation".to_owned(),
        Action::RevokeGrant { name, .. } => format!("revoke grant {name}"),
        Action::CreateGrant(grant) => format!("create grant {}", grant.name),
        Action::RotateOnDemand { token, .. } => format!("rotate the key material on demand ({token})"),
        Action::ScheduleDeletion(days) => format!("schedule the key's deletion in {days} days"),
    };
    Some(line)
}

/// The lines of a plan: its `notices` first (`note: ...`, such as reads AWS refused, which
/// leave part of the plan unknown), then one per action; at most [`MAX_PLAN_LINES`], the last
/// saying how many are left out when there are more.
pub fn plan_lines(actions: &[Action], notices: &[String]) -> Vec<String> {
    let notes = notices.iter().map(|n| format!("note: {n}"));
    let mut lines: Vec<String> = notes.chain(actions.iter().filter_map(summary)).collect();
    if lines.len() > MAX_PLAN_LINES {
        let left_out = lines.len() - (MAX_PLAN_LINES - 1);
        lines.truncate(MAX_PLAN_LINES - 1);
        lines.push(format!("... and {left_out} more"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn tag_lines_name_the_keys_and_never_the_values() {
        let tags = BTreeMap::from([("owner".to_owned(), "s3cr3t-value".to_owned())]);
        let line = summary(&Action::Tag(tags)).unwrap();
        assert_eq!(line, "set tags owner");
    }

    #[test]
    fn a_status_write_is_no_line() {
        let key = crate::reconcile::plan::tests::mk_key().key;
        assert_eq!(summary(&Action::RecordKey(key)), None);
    }

    #[test]
    fn a_long_plan_is_cut_to_twenty_lines_that_count_the_rest() {
        let actions: Vec<Action> = (0..25).map(|i| Action::CreateAlias(format!("alias/a{i}"))).collect();
        let lines = plan_lines(&actions, &["one".to_owned()]);
        assert_eq!(lines.len(), MAX_PLAN_LINES);
        assert_eq!(lines[0], "note: one");
        assert_eq!(lines[18], "create alias alias/a17");
        assert_eq!(lines[19], "... and 7 more");
    }
}
