//! The decision to create a key: only when no earlier attempt may still surface, and only
//! when the wanted alias is free (a key made for a taken alias would be orphaned at once).

use crate::api::KmsKeySpec;
use crate::kms::NewKey;

use super::super::ownership::TAG_CREATE_TOKEN;
use super::super::policy_builder::policy_at_create;
use super::timing::settling_intent;
use super::{Action, Blocker, Context, Hold, Plan};

/// The plan for an object with no key.
pub fn plan_create(
    spec: &KmsKeySpec,
    alias_target: Option<&str>,
    account_arn: Option<&str>,
    ctx: &Context,
) -> Plan {
    if let Some(left) = settling_intent(ctx.recorded, ctx.now) {
        return Plan { hold: Some(Hold::CreateSettling(left)), ..Plan::default() };
    }
    if let Some(holder) = alias_target {
        let alias = spec.full_alias_name();
        return Plan::blocked(Blocker::AliasConflict { alias, holder: holder.to_owned() });
    }
    if ctx.alias_handover_held {
        return Plan::blocked(Blocker::AliasHandoverHeld { alias: spec.full_alias_name() });
    }
    let mut tags = spec.tags.clone();
    tags.extend(ctx.owner.tags());
    tags.insert(TAG_CREATE_TOKEN.to_owned(), ctx.fresh_token.to_owned());
    let key = NewKey {
        description: spec.key_description.clone(),
        policy: policy_at_create(spec, account_arn),
        tags,
        multi_region: spec.multi_region,
        key_spec: spec.key_spec.as_str().to_owned(),
        key_usage: spec.key_usage.as_str().to_owned(),
    };
    Plan { actions: vec![Action::CreateKey { key, token: ctx.fresh_token.to_owned() }], ..Plan::default() }
}
