//! The request pipeline of the strict layer: one KMS or tag:GetResources call through AWS's
//! checks (see the module above for the order), then to moto, then what the answer teaches.
//! Side calls go to moto directly and are not counted by the proxy.

use serde_json::{Value, json};

use super::consistency::Tags;
use super::iam::{self, Context, Policy, Request};
use super::pages::{self, Paging};
use super::upstream::{self, Message};
use super::{KeyInfo, Refusal, Strict, grants, key_specs, key_states, limits};

/// Why the pipeline stopped before an answer from moto.
enum Stop {
    Refuse(Refusal),
    /// moto could not be reached.
    Transport,
}

impl From<Refusal> for Stop {
    fn from(refusal: Refusal) -> Self {
        Stop::Refuse(refusal)
    }
}

type Step<T> = Result<T, Stop>;

/// One client request with a JSON body and an operation the layer models.
pub struct Call<'a> {
    op: &'a str,
    tagging: bool,
    request: &'a Message,
    body: Value,
}

impl<'a> Call<'a> {
    pub fn parse(request: &'a Message) -> Option<Call<'a>> {
        let target = request.header("x-amz-target")?;
        let (op, tagging) = match target.strip_prefix("TrentService.") {
            Some(op) => (op, false),
            None if target == "ResourceGroupsTaggingAPI_20170126.GetResources" => ("GetResources", true),
            None => return None,
        };
        let body =
            if request.body.is_empty() { json!({}) } else { serde_json::from_slice(&request.body).ok()? };
        body.is_object().then_some(Call { op, tagging, request, body })
    }

    fn text(&self, field: &str) -> Option<&str> {
        self.body[field].as_str()
    }

    fn request_tags(&self) -> Tags {
        let tags = self.body["Tags"].as_array().into_iter().flatten();
        tags.map(|t| (text_of(&t["TagKey"]), text_of(&t["TagValue"]))).collect()
    }
}

fn text_of(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The keys a call names, in the order they are authorized: CreateAlias's target, UpdateAlias's
/// new and current targets, DeleteAlias's target, or the KeyId of a key-scoped call.
/// CreateKey, ListKeys and ListAliases are not key-scoped (ListAliases needs `kms:ListAliases`
/// on `*` even with a KeyId, per its API reference).
fn key_refs(call: &Call) -> Vec<String> {
    let fields: &[&str] = match call.op {
        "CreateKey" | "ListKeys" | "ListAliases" => &[],
        "CreateAlias" => &["TargetKeyId"],
        "UpdateAlias" => &["TargetKeyId", "AliasName"],
        "DeleteAlias" => &["AliasName"],
        _ => &["KeyId"],
    };
    fields.iter().filter_map(|f| call.text(f)).map(str::to_owned).collect()
}

/// Rotation calls AWS refuses on a multi-Region replica: the primary's rotation is shared.
const ROTATION_OF_THE_PRIMARY: [&str; 3] = ["EnableKeyRotation", "DisableKeyRotation", "RotateKeyOnDemand"];

/// A resource to authorize: an ARN (or `*`) and the key it is, if it is one.
type Target<'k> = (String, Option<&'k KeyInfo>);

impl Strict {
    pub(super) async fn run(&self, call: &Call<'_>) -> Option<Vec<u8>> {
        let outcome = if call.tagging { self.get_resources(call).await } else { self.kms(call).await };
        match outcome {
            Ok(bytes) => Some(bytes),
            Err(Stop::Refuse(refusal)) => Some(upstream::error(refusal.code, &refusal.message)),
            Err(Stop::Transport) => None,
        }
    }

    async fn kms(&self, call: &Call<'_>) -> Step<Vec<u8>> {
        limits::check_request(call.op, &call.body)?;
        if call.op == "CreateKey" {
            return self.create_key(call).await;
        }
        let mut keys = Vec::new();
        for key_ref in key_refs(call) {
            match self.resolve(call, &key_ref).await? {
                Some(key) => keys.push(key),
                None => return self.forward(call).await.map(|r| r.to_client()),
            }
        }
        self.check_describe_lag(call, keys.first())?;
        self.authorize(call, &format!("kms:{}", call.op), &self.targets(call, &keys))?;
        if let Some(key) = keys.first() {
            key_states::check(call.op, key)?;
            limits::check_with_key(call.op, &call.body, key)?;
            match call.op {
                "CreateGrant" => key_specs::check_grant(&call.body, key)?,
                "RotateKeyOnDemand" => key_specs::check_on_demand_rotation(key)?,
                _ => {}
            }
            if key.replica && ROTATION_OF_THE_PRIMARY.contains(&call.op) {
                let message = format!(
                    "{} is a multi-Region replica key; its rotation is managed on its primary key.",
                    key.arn
                );
                return Err(Refusal::new("UnsupportedOperationException", message).into());
            }
        }
        if matches!(call.op, "PutKeyPolicy" | "ReplicateKey") {
            self.check_new_policy(call)?;
        }
        if call.op == "ReplicateKey" {
            // The replica is a new key in its Region: kms:CreateKey there too, and
            // kms:TagResource to give it tags (ReplicateKey API reference).
            self.authorize_create(call)?;
        }
        if call.op == "CreateGrant" {
            grants::check_request(&call.body)?;
        }
        if let (Some(key), "RotateKeyOnDemand") = (keys.first(), call.op) {
            self.check_on_demand_limit(call, key).await?;
        }
        if let (Some(key), "CreateAlias") = (keys.first(), call.op) {
            self.check_alias_limit(call, key).await?;
        }
        if let (Some(key), "CreateGrant") = (keys.first(), call.op)
            && let Some(answer) = self.idempotent_grant(call, key).await?
        {
            return Ok(answer);
        }
        if let (Some(key), "GetKeyLastUsage") = (keys.first(), call.op) {
            return Ok(upstream::ok_json(&self.learned().usage.answer(&key.id, key.created)));
        }
        if let Some(paging) = pages::paging_for(call.op) {
            return self.paged(call, &paging).await;
        }
        let response = self.forward(call).await?;
        Ok(self.learn(call, keys.first(), response).await.to_client())
    }

    async fn create_key(&self, call: &Call<'_>) -> Step<Vec<u8>> {
        self.authorize_create(call)?;
        self.check_new_policy(call)?;
        let stand_in = key_specs::check_create(&call.body)?;
        let response = match &stand_in {
            Some((body, _)) => {
                let request = call.request.with_body(body.to_string().into_bytes());
                self.upstream.send(&request).await.ok_or(Stop::Transport)?
            }
            None => self.forward(call).await?,
        };
        let mut answer = response.json();
        let Some(id) = answer["KeyMetadata"]["KeyId"].as_str().filter(|_| response.ok()) else {
            return Ok(response.to_client());
        };
        let arn = text_of(&answer["KeyMetadata"]["Arn"]);
        let now = self.now();
        let at = self.config.clock.now_timestamp().as_second();
        let mut learned = self.learned();
        learned.history.created(&arn, now, call.request_tags());
        learned.usage.created(id, at);
        drop(learned);
        let Some((_, real)) = stand_in else { return Ok(response.to_client()) };
        self.learned().real_specs.insert(id.to_owned(), real.clone());
        key_specs::report_real_spec(&mut answer["KeyMetadata"], &real);
        Ok(response.with_body(answer.to_string().into_bytes()).to_client())
    }

    /// kms:CreateKey on `*`, and with Tags kms:TagResource (CreateKey API reference).
    fn authorize_create(&self, call: &Call) -> Result<(), Refusal> {
        let anywhere: [Target; 1] = [("*".to_owned(), None)];
        self.authorize(call, "kms:CreateKey", &anywhere)?;
        if !call.request_tags().is_empty() {
            self.authorize(call, "kms:TagResource", &anywhere)?;
        }
        Ok(())
    }

    async fn get_resources(&self, call: &Call<'_>) -> Step<Vec<u8>> {
        self.authorize(call, "tag:GetResources", &[("*".to_owned(), None)])?;
        let paging = pages::paging_for("GetResources").expect("GetResources pages");
        self.paged(call, &paging).await
    }

    async fn forward(&self, call: &Call<'_>) -> Step<Message> {
        self.upstream.send(call.request).await.ok_or(Stop::Transport)
    }

    async fn side(&self, call: &Call<'_>, operation: &str, body: Value) -> Step<Message> {
        self.upstream.kms(call.request, operation, body).await.ok_or(Stop::Transport)
    }

    /// The key `key_ref` (ID, ARN, alias name or alias ARN) names, or `None` if moto knows none.
    async fn resolve(&self, call: &Call<'_>, key_ref: &str) -> Step<Option<KeyInfo>> {
        let described = self.side(call, "DescribeKey", json!({"KeyId": key_ref})).await?;
        if !described.ok() {
            return Ok(None);
        }
        let meta = &described.json()["KeyMetadata"];
        let mut key = KeyInfo {
            id: text_of(&meta["KeyId"]),
            arn: text_of(&meta["Arn"]),
            state: text_of(&meta["KeyState"]),
            spec: text_of(&meta["KeySpec"]),
            usage: text_of(&meta["KeyUsage"]),
            created: meta["CreationDate"].as_f64().unwrap_or_default(),
            origin: text_of(&meta["Origin"]),
            replica: meta["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA",
            tags: Tags::new(),
            policy: None,
        };
        if let Some(real) = self.learned().real_specs.get(&key.id) {
            key.spec = real.clone();
        }
        if self.identity.is_some() || matches!(call.op, "TagResource" | "UntagResource") {
            let listed = self.side(call, "ListResourceTags", json!({"KeyId": key.id})).await?;
            let tags = listed.json()["Tags"].as_array().cloned().unwrap_or_default();
            key.tags = tags.iter().map(|t| (text_of(&t["TagKey"]), text_of(&t["TagValue"]))).collect();
        }
        if self.identity.is_some() {
            let body = json!({"KeyId": key.id, "PolicyName": "default"});
            let policy = self.side(call, "GetKeyPolicy", body).await?.json();
            key.policy = policy["Policy"].as_str().map(Policy::parse);
        }
        Ok(Some(key))
    }

    /// DescribeKey by key ID or ARN does not find a key younger than `describe_lag`.
    fn check_describe_lag(&self, call: &Call, key: Option<&KeyInfo>) -> Result<(), Refusal> {
        let (Some(key), "DescribeKey") = (key, call.op) else { return Ok(()) };
        let by_alias = call.text("KeyId").is_some_and(|r| r.starts_with("alias/") || r.contains(":alias/"));
        let now = self.now();
        if by_alias || !self.learned().history.younger_than(&key.arn, now, self.config.describe_lag) {
            return Ok(());
        }
        Err(Refusal::new("NotFoundException", format!("Key '{}' does not exist", key.arn)))
    }

    /// The resources a call is authorized on: its keys, plus the alias for alias calls (both
    /// must be allowed, per "Controlling access to aliases"), or `*`.
    fn targets<'k>(&self, call: &Call, keys: &'k [KeyInfo]) -> Vec<Target<'k>> {
        let mut targets: Vec<Target> = keys.iter().map(|k| (k.arn.clone(), Some(k))).collect();
        if let ("CreateAlias" | "UpdateAlias" | "DeleteAlias", Some(name)) = (call.op, call.text("AliasName"))
        {
            let region = upstream::region_of(call.request);
            let name = name.trim_start_matches("alias/");
            let account = self.principal(call.request).account;
            targets.push((format!("arn:aws:kms:{region}:{account}:alias/{name}"), None));
        }
        if targets.is_empty() {
            targets.push(("*".to_owned(), None));
        }
        targets
    }

    fn authorize(&self, call: &Call, action: &str, targets: &[Target]) -> Result<(), Refusal> {
        let principal = self.principal(call.request);
        let Some(identity) = self.identity_of(&principal) else { return Ok(()) };
        let (caller, account) = (&principal.caller, &principal.account);
        for (resource, key) in targets {
            let context = self.context(call, *key);
            let request = Request { action, resource, context: &context };
            let key_policy = key.and_then(|k| k.policy.as_ref());
            iam::authorize(&identity, key_policy, &request, caller, account).map_err(|denial| {
                Refusal::new("AccessDeniedException", denial.message(caller, action, resource))
            })?;
        }
        Ok(())
    }

    /// The condition keys of a call, with the key's tags as IAM sees them now.
    fn context(&self, call: &Call, key: Option<&KeyInfo>) -> Context {
        let principal = self.principal(call.request);
        let mut context = Context::new().with("aws:PrincipalArn", &principal.caller);
        context.set("kms:CallerAccount", vec![principal.account]);
        let request_tags = call.request_tags();
        for (k, v) in &request_tags {
            context.set(&format!("aws:RequestTag/{k}"), vec![v.clone()]);
        }
        match call.op {
            "CreateKey" | "ReplicateKey" | "TagResource" if !request_tags.is_empty() => {
                context.set("aws:TagKeys", request_tags.keys().cloned().collect());
            }
            "UntagResource" => {
                let keys = call.body["TagKeys"].as_array().into_iter().flatten();
                context.set("aws:TagKeys", keys.filter_map(Value::as_str).map(str::to_owned).collect());
            }
            _ => {}
        }
        if matches!(call.op, "CreateKey" | "PutKeyPolicy" | "ReplicateKey") {
            let bypass = call.body["BypassPolicyLockoutSafetyCheck"].as_bool().unwrap_or(false);
            context.set("kms:BypassPolicyLockoutSafetyCheck", vec![bypass.to_string()]);
        }
        if let Some(key) = key {
            let now = self.now();
            let seen = self.learned().history.tags_for_iam(&key.arn, now, self.config.tag_lag, &key.tags);
            for (k, v) in seen {
                context.set(&format!("aws:ResourceTag/{k}"), vec![v]);
            }
        }
        context
    }

    /// CreateKey and PutKeyPolicy: every principal must exist, and the policy must let the
    /// caller update it later unless BypassPolicyLockoutSafetyCheck is set.
    fn check_new_policy(&self, call: &Call) -> Result<(), Refusal> {
        let Some(text) = call.text("Policy") else { return Ok(()) };
        let policy = Policy::parse(text);
        if policy.principals().iter().any(|p| self.principal_unknown(p)) {
            return Err(Refusal::new(
                "MalformedPolicyDocumentException",
                "Policy contains a statement with one or more invalid principals.",
            ));
        }
        if call.body["BypassPolicyLockoutSafetyCheck"].as_bool() == Some(true) {
            return Ok(());
        }
        let principal = self.principal(call.request);
        let (caller, account) = (principal.caller.as_str(), principal.account.as_str());
        let root = format!("arn:aws:iam::{account}:root");
        if !policy.allows_any_principal_to("kms:PutKeyPolicy", &[caller, &root, account]) {
            return Err(Refusal::new(
                "MalformedPolicyDocumentException",
                "The new key policy will not allow you to update the key policy in the future.",
            ));
        }
        Ok(())
    }

    /// A CreateGrant that repeats an existing grant: that grant's ID, without a new grant.
    async fn idempotent_grant(&self, call: &Call<'_>, key: &KeyInfo) -> Step<Option<Vec<u8>>> {
        if call.text("Name").is_none_or(str::is_empty) {
            return Ok(None);
        }
        let listed = self.side(call, "ListGrants", json!({"KeyId": key.id})).await?.json();
        let mut all = listed["Grants"].as_array().cloned().unwrap_or_default();
        grants::restore_service_fields(&mut all, &self.learned().service_grants);
        let Some(grant) = grants::existing(&call.body, &all) else { return Ok(None) };
        let id = grant["GrantId"].as_str().unwrap_or_default();
        let known = self.learned().grant_tokens.get(id).cloned();
        let token = known.unwrap_or_else(grants::fresh_token);
        Ok(Some(upstream::ok_json(&grants::answer(grant, &token))))
    }

    /// At most 50 aliases per key → `LimitExceededException`.
    async fn check_alias_limit(&self, call: &Call<'_>, key: &KeyInfo) -> Step<()> {
        let listed = self.side(call, "ListAliases", json!({"KeyId": key.id})).await?.json();
        let aliases = listed["Aliases"].as_array().cloned().unwrap_or_default();
        let on_key = aliases.iter().filter(|a| a["TargetKeyId"].as_str() == Some(key.id.as_str())).count();
        if on_key >= limits::MAX_ALIASES_PER_KEY {
            let message = format!("{} already has {on_key} aliases, the most a key can have.", key.arn);
            return Err(Refusal::new("LimitExceededException", message).into());
        }
        Ok(())
    }

    /// At most 25 on-demand rotations per key, ever → `LimitExceededException`.
    async fn check_on_demand_limit(&self, call: &Call<'_>, key: &KeyInfo) -> Step<()> {
        let listed = self.side(call, "ListKeyRotations", json!({"KeyId": key.id})).await?.json();
        let rotations = listed["Rotations"].as_array().cloned().unwrap_or_default();
        let on_demand = rotations.iter().filter(|r| r["RotationType"] == "ON_DEMAND").count();
        if on_demand >= key_specs::MAX_ON_DEMAND_ROTATIONS {
            let message = format!("{} has reached the limit of on-demand rotations.", key.arn);
            return Err(Refusal::new("LimitExceededException", message).into());
        }
        Ok(())
    }

    /// Asks moto for the whole list and answers one page of it.
    async fn paged(&self, call: &Call<'_>, paging: &Paging) -> Step<Vec<u8>> {
        let (start, size) = pages::requested(paging, &call.body, self.config.page_size)?;
        let whole = pages::whole_list_request(paging, &call.body).to_string().into_bytes();
        let response = self.upstream.send(&call.request.with_body(whole)).await.ok_or(Stop::Transport)?;
        if !response.ok() {
            return Ok(response.to_client());
        }
        let mut full = response.json();
        self.hide_young_keys(paging, &mut full);
        if let ("ListGrants", Some(items)) = (paging.operation, full["Grants"].as_array_mut()) {
            grants::restore_service_fields(items, &self.learned().service_grants);
        }
        if let (Some(key), "ListKeyRotations", Some(items)) =
            (call.text("KeyId"), paging.operation, full["Rotations"].as_array_mut())
        {
            self.date_on_demand_rotations(key, items);
        }
        pages::keep_aliases_of_the_key_asked_for(paging, &call.body, &mut full);
        Ok(upstream::ok_json(&pages::page(paging, &full, start, size)))
    }

    /// ListKeys does not show keys younger than `list_lag` yet, tag:GetResources keys younger
    /// than `tagging_lag`.
    fn hide_young_keys(&self, paging: &Paging, full: &mut Value) {
        let id_of: fn(&Value) -> Option<&str> = match paging.operation {
            "ListKeys" => |item| item["KeyArn"].as_str(),
            "GetResources" => |item| item["ResourceARN"].as_str(),
            _ => return,
        };
        let now = self.now();
        let learned = self.learned();
        let lag =
            if paging.operation == "GetResources" { self.config.tagging_lag } else { self.config.list_lag };
        let young = |id: &str| learned.history.younger_than(id, now, lag);
        if let Some(items) = full[paging.items].as_array_mut() {
            items.retain(|item| !id_of(item).is_some_and(young));
        }
    }

    /// Records what a successful answer changed, and completes moto's answer where AWS says more.
    async fn learn(&self, call: &Call<'_>, key: Option<&KeyInfo>, response: Message) -> Message {
        let (Some(key), true) = (key, response.ok()) else { return response };
        let now = self.now();
        let at = self.config.clock.now_timestamp().as_second();
        self.learned().usage.used(&key.id, call.op, at);
        match call.op {
            "TagResource" | "UntagResource" => {
                let after = retagged(call, &key.tags);
                self.learned().history.retagged(&key.arn, now, &key.tags, after);
            }
            "CreateGrant" => {
                let answer = response.json();
                if let (Some(id), Some(token)) = (answer["GrantId"].as_str(), answer["GrantToken"].as_str()) {
                    let mut learned = self.learned();
                    learned.grant_tokens.insert(id.to_owned(), token.to_owned());
                    if let Some(fields) = grants::service_fields(&call.body) {
                        learned.service_grants.insert(id.to_owned(), fields);
                    }
                }
            }
            "EnableKeyRotation" => {
                let period = call.body["RotationPeriodInDays"].as_i64().unwrap_or(365);
                let since = self.config.clock.now_timestamp().as_second();
                self.learned().rotation_periods.insert(key.id.clone(), (period, since));
            }
            "GetKeyRotationStatus" => return self.with_rotation_period(key, response),
            "DescribeKey" if self.learned().real_specs.contains_key(&key.id) => {
                let mut body = response.json();
                key_specs::report_real_spec(&mut body["KeyMetadata"], &key.spec);
                return response.with_body(body.to_string().into_bytes());
            }
            "RotateKeyOnDemand" => {
                let at = self.config.clock.now_timestamp().as_second();
                self.learned().on_demand_rotations.entry(key.id.clone()).or_default().push(at);
            }
            "CancelKeyDeletion" => {
                key_states::settle_after_cancel(&self.upstream, call.request, &key.id).await;
            }
            "ReplicateKey" => {
                let replica = text_of(&response.json()["ReplicaKeyMetadata"]["Arn"]);
                self.learned().history.created(&replica, now, call.request_tags());
            }
            _ => {}
        }
        response
    }

    /// moto forgets the rotation period; AWS returns it while rotation is enabled, with the
    /// next rotation date: a period after rotation was enabled (with the period it has now).
    fn with_rotation_period(&self, key: &KeyInfo, response: Message) -> Message {
        let mut body = response.json();
        if body["KeyRotationEnabled"] != true {
            return response;
        }
        let now = self.config.clock.now_timestamp().as_second();
        let (period, since) = self.learned().rotation_periods.get(&key.id).copied().unwrap_or((365, now));
        body["RotationPeriodInDays"] = json!(period);
        body["NextRotationDate"] = json!(since + period * 86_400);
        response.with_body(body.to_string().into_bytes())
    }
}

impl Strict {
    /// moto dates an on-demand rotation by the machine's clock; AWS's is the test clock. The
    /// rotations this layer saw, in order, get the test clock's times.
    fn date_on_demand_rotations(&self, key_ref: &str, items: &mut [Value]) {
        let learned = self.learned();
        let times = learned.on_demand_rotations.iter().find(|(id, _)| key_ref.ends_with(id.as_str()));
        let Some((_, times)) = times else { return };
        let on_demand = items.iter_mut().filter(|r| r["RotationType"] == "ON_DEMAND");
        for (item, at) in on_demand.zip(times) {
            item["RotationDate"] = json!(at);
        }
    }
}

/// The key's tags after a successful TagResource or UntagResource.
fn retagged(call: &Call, before: &Tags) -> Tags {
    let mut after = before.clone();
    if call.op == "TagResource" {
        after.extend(call.request_tags());
    } else {
        for key in call.body["TagKeys"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            after.remove(key);
        }
    }
    after
}
