//! An IAM policy evaluator, small on purpose: the elements, operators and condition keys that
//! the operator's policies use, with IAM's semantics
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>):
//! a statement applies when its Action/NotAction, Resource/NotResource, Principal (resource
//! policies only) and every condition match; an explicit Deny beats any Allow; no Allow means
//! not allowed. Conditions: all operators and keys of a block must hold, and one of a key's
//! values is enough. A missing key makes a positive operator false and a negated one
//! (`StringNotEquals`, `StringNotLike`) true; `ForAnyValue:` over no values is false,
//! `ForAllValues:` over no values is true. `Null` tests presence. Condition key names and the
//! tag-key part of `aws:ResourceTag/<k>` are case-insensitive, values are not.
//! Anything else (another operator, `...IfExists`, an unknown key, a policy variable,
//! `NotPrincipal`) makes parsing panic, so a new statement cannot be silently ignored.

use std::collections::BTreeMap;

use serde_json::Value;

/// The outcome of evaluating one policy for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    NotAllowed,
}

/// The condition keys of a request, each with its values (one for single-valued keys).
#[derive(Clone, Debug, Default)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued key.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.set(key, vec![value.to_owned()]);
        self
    }

    /// Sets a multivalued key such as `aws:TagKeys`.
    pub fn with_all(mut self, key: &str, values: &[&str]) -> Self {
        self.set(key, values.iter().map(|v| (*v).to_owned()).collect());
        self
    }

    pub fn set(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_ascii_lowercase(), values);
    }

    fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(key).map(Vec::as_slice)
    }
}

/// What is being asked: `kms:<Op>` on a resource ARN (or `*`), with its condition keys.
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a Context,
}

/// Whose policy this is: an identity policy (no Principal element), or a resource policy
/// evaluated for principals with these names (ARNs or an account ID).
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Identity,
    Principals(&'a [&'a str]),
}

#[derive(Clone, Debug)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Clone, Debug)]
struct Statement {
    allow: bool,
    principals: Option<Vec<String>>,
    actions: Names,
    resources: Names,
    conditions: Vec<Condition>,
}

/// `Action` or `NotAction` (`not`), `Resource` or `NotResource`.
#[derive(Clone, Debug)]
struct Names {
    not: bool,
    patterns: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SetOp {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringLike,
    StringNotLike,
    Bool,
    Null,
}

#[derive(Clone, Debug)]
struct Condition {
    set: SetOp,
    op: Op,
    key: String,
    values: Vec<String>,
}

const STATEMENT_FIELDS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "NotPrincipal",
];

impl Policy {
    /// Parses a policy document; panics on anything the evaluator does not model.
    pub fn parse(text: &str) -> Policy {
        let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("policy is not JSON: {e}"));
        Self::from_value(&value).unwrap_or_else(|problems| {
            panic!("the strict IAM evaluator cannot evaluate this policy:\n  {}", problems.join("\n  "))
        })
    }

    /// The policy, or every element in it that the evaluator does not model.
    pub fn from_value(value: &Value) -> Result<Policy, Vec<String>> {
        let mut problems = Vec::new();
        let statements = match &value["Statement"] {
            Value::Array(list) => list.iter().collect(),
            Value::Object(_) => vec![&value["Statement"]],
            _ => {
                problems.push("no Statement list".to_owned());
                vec![]
            }
        };
        let parsed = statements.iter().enumerate().filter_map(|(i, s)| match parse_statement(s) {
            Ok(statement) => Some(statement),
            Err(mut errs) => {
                problems.extend(errs.drain(..).map(|e| format!("statement {i}: {e}")));
                None
            }
        });
        let statements = parsed.collect();
        if problems.is_empty() { Ok(Policy { statements }) } else { Err(problems) }
    }

    /// Evaluates the request: an explicit Deny wins, then any Allow, else not allowed.
    pub fn evaluate(&self, request: &Request, who: Who) -> Decision {
        let applies = |s: &&Statement| s.applies(request, who);
        let matching: Vec<&Statement> = self.statements.iter().filter(applies).collect();
        if matching.iter().any(|s| !s.allow) {
            Decision::ExplicitDeny
        } else if matching.iter().any(|s| s.allow) {
            Decision::Allow
        } else {
            Decision::NotAllowed
        }
    }

    /// Every AWS principal the policy names (ARNs and account IDs; not `*`).
    pub fn principals(&self) -> Vec<String> {
        let named = self.statements.iter().filter_map(|s| s.principals.as_ref()).flatten();
        named.filter(|p| p.as_str() != "*").cloned().collect()
    }

    /// KMS's lockout safety check: some Allow statement lets one of `names` (or everyone) call
    /// `action`, whatever its resource and conditions.
    pub fn allows_any_principal_to(&self, action: &str, names: &[&str]) -> bool {
        self.statements.iter().any(|s| s.allow && s.actions.matches(action, true) && s.names_principal(names))
    }
}

fn parse_statement(value: &Value) -> Result<Statement, Vec<String>> {
    let mut problems = Vec::new();
    let Some(object) = value.as_object() else { return Err(vec!["not an object".to_owned()]) };
    for field in object.keys().filter(|f| !STATEMENT_FIELDS.contains(&f.as_str()) || *f == "NotPrincipal") {
        problems.push(format!("element {field} is not modelled"));
    }
    let allow = match value["Effect"].as_str() {
        Some("Allow") => true,
        Some("Deny") => false,
        other => {
            problems.push(format!("Effect {other:?}"));
            false
        }
    };
    let actions = names(value, "Action", "NotAction").unwrap_or_else(|e| {
        problems.push(e);
        Names { not: false, patterns: vec![] }
    });
    let resources =
        names(value, "Resource", "NotResource").unwrap_or(Names { not: false, patterns: vec!["*".into()] });
    let principals = value.get("Principal").map(principal_names);
    let conditions = match value.get("Condition") {
        None => vec![],
        Some(block) => parse_conditions(block).unwrap_or_else(|mut errs| {
            problems.append(&mut errs);
            vec![]
        }),
    };
    if problems.is_empty() {
        Ok(Statement { allow, principals, actions, resources, conditions })
    } else {
        Err(problems)
    }
}

fn names(value: &Value, field: &str, not_field: &str) -> Result<Names, String> {
    match (value.get(field), value.get(not_field)) {
        (Some(v), None) => Ok(Names { not: false, patterns: strings(v) }),
        (None, Some(v)) => Ok(Names { not: true, patterns: strings(v) }),
        _ => Err(format!("needs exactly one of {field} and {not_field}")),
    }
}

/// A JSON string, bool, number or array of them, as strings.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::String(s) => vec![s.clone()],
        Value::Null => vec![],
        other => vec![other.to_string()],
    }
}

/// `"*"`, or the `AWS` (and other) principals of a Principal element.
fn principal_names(value: &Value) -> Vec<String> {
    match value {
        Value::Object(kinds) => kinds.values().flat_map(strings).collect(),
        other => strings(other),
    }
}

fn parse_conditions(block: &Value) -> Result<Vec<Condition>, Vec<String>> {
    let Some(operators) = block.as_object() else {
        return Err(vec!["Condition is not an object".to_owned()]);
    };
    let mut problems = Vec::new();
    let mut conditions = Vec::new();
    for (operator, keys) in operators {
        let (set, op) = match parse_operator(operator) {
            Ok(parsed) => parsed,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        for (key, values) in keys.as_object().into_iter().flatten() {
            let key = key.to_ascii_lowercase();
            let values = strings(values);
            if !known_key(&key) {
                problems.push(format!("unknown condition key {key}"));
            } else if values.iter().any(|v| v.contains("${")) {
                problems.push(format!("policy variables are not modelled ({key})"));
            } else {
                conditions.push(Condition { set, op, key, values });
            }
        }
    }
    if problems.is_empty() { Ok(conditions) } else { Err(problems) }
}

fn parse_operator(name: &str) -> Result<(SetOp, Op), String> {
    let (set, base) = match name.split_once(':') {
        Some(("ForAnyValue", base)) => (SetOp::AnyValue, base),
        Some(("ForAllValues", base)) => (SetOp::AllValues, base),
        Some(_) => return Err(format!("unknown condition operator {name}")),
        None => (SetOp::Single, name),
    };
    let op = match base {
        "StringEquals" => Op::StringEquals,
        "StringNotEquals" => Op::StringNotEquals,
        "StringLike" => Op::StringLike,
        "StringNotLike" => Op::StringNotLike,
        "Bool" => Op::Bool,
        "Null" if set == SetOp::Single => Op::Null,
        _ => return Err(format!("unknown condition operator {name}")),
    };
    Ok((set, op))
}

/// The condition keys the strict layer puts in a request context.
fn known_key(key: &str) -> bool {
    ["aws:requesttag/", "aws:resourcetag/"].iter().any(|p| key.starts_with(p) && key.len() > p.len())
        || ["aws:tagkeys", "kms:bypasspolicylockoutsafetycheck", "aws:principalarn", "kms:calleraccount"]
            .contains(&key)
        || NEVER_IN_THE_OPERATORS_REQUESTS.contains(&key)
}

/// Condition keys AWS sets only for requests the operator never makes: from an AWS service on
/// a user's behalf (`kms:GrantIsForAWSResource`) or through a VPC endpoint. Known, and absent
/// from every request the layer evaluates.
const NEVER_IN_THE_OPERATORS_REQUESTS: [&str; 3] =
    ["kms:grantisforawsresource", "aws:sourcevpc", "aws:sourcevpce"];

impl Statement {
    fn applies(&self, request: &Request, who: Who) -> bool {
        let principal_ok = match (who, &self.principals) {
            (Who::Identity, _) => true,
            (Who::Principals(_), None) => false,
            (Who::Principals(names), Some(_)) => self.names_principal(names),
        };
        principal_ok
            && self.actions.matches(request.action, true)
            && self.resources.matches(request.resource, false)
            && self.conditions.iter().all(|c| c.holds(request.context))
    }

    fn names_principal(&self, names: &[&str]) -> bool {
        let Some(principals) = &self.principals else { return false };
        principals.iter().any(|p| p == "*" || names.iter().any(|n| same_principal(p, n)))
    }
}

/// moto's STS calls its user `arn:aws:sts::<account>:user/<name>`; IAM spells it `arn:aws:iam::`.
fn same_principal(a: &str, b: &str) -> bool {
    a == b || a.replacen(":sts::", ":iam::", 1) == b.replacen(":sts::", ":iam::", 1)
}

impl Names {
    fn matches(&self, name: &str, case_insensitive: bool) -> bool {
        self.patterns.iter().any(|p| glob(p, name, case_insensitive)) != self.not
    }
}

impl Condition {
    fn holds(&self, context: &Context) -> bool {
        let present = context.get(&self.key);
        if self.op == Op::Null {
            let want_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return present.is_none() == want_absent;
        }
        let negated = matches!(self.op, Op::StringNotEquals | Op::StringNotLike);
        let hit = |v: &String| self.values.iter().any(|p| self.op.matches(p, v));
        let values = present.unwrap_or_default();
        match self.set {
            SetOp::Single if present.is_none() => negated,
            SetOp::Single => values.iter().any(hit) != negated,
            SetOp::AnyValue => values.iter().any(|v| hit(v) != negated),
            SetOp::AllValues => values.iter().all(|v| hit(v) != negated),
        }
    }
}

impl Op {
    /// Whether the request value matches the policy value, for the positive form of the operator.
    fn matches(self, policy: &str, value: &str) -> bool {
        match self {
            Op::StringEquals | Op::StringNotEquals => policy == value,
            Op::StringLike | Op::StringNotLike => glob(policy, value, false),
            Op::Bool => policy.eq_ignore_ascii_case(value),
            Op::Null => unreachable!("Null is decided by presence"),
        }
    }
}

/// IAM wildcard matching: `*` any run of characters, `?` any one character.
pub fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let fold = |s: &str| -> Vec<char> {
        if case_insensitive { s.to_lowercase().chars().collect() } else { s.chars().collect() }
    };
    let (p, t) = (fold(pattern), fold(text));
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Why a request is refused, as the end of AWS's AccessDenied message says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    ExplicitIdentity,
    ExplicitResource,
    NoIdentityAllow,
    NoResourceAllow,
}

impl Denial {
    pub fn message(self, caller: &str, action: &str, resource: &str) -> String {
        let why = match self {
            Denial::ExplicitIdentity => "with an explicit deny in an identity-based policy".to_owned(),
            Denial::ExplicitResource => "with an explicit deny in a resource-based policy".to_owned(),
            Denial::NoIdentityAllow => format!("because no identity-based policy allows the {action} action"),
            Denial::NoResourceAllow => format!("because no resource-based policy allows the {action} action"),
        };
        format!("User: {caller} is not authorized to perform: {action} on resource: {resource} {why}")
    }
}

/// KMS authorization ("Determining access to an AWS KMS key"): on a key, the key policy must
/// allow the caller itself (or everyone), or allow the account (`arn:aws:iam::<account>:root`
/// or the account ID) so that IAM policies count, and then an identity policy must allow it.
/// An explicit Deny in either policy wins. Calls on no key (`*`, alias ARNs) need only the
/// identity policy.
pub fn authorize(
    identity: &Policy,
    key_policy: Option<&Policy>,
    request: &Request,
    caller: &str,
    account: &str,
) -> Result<(), Denial> {
    let by_identity = identity.evaluate(request, Who::Identity);
    let Some(key_policy) = key_policy else {
        return match by_identity {
            Decision::Allow => Ok(()),
            Decision::ExplicitDeny => Err(Denial::ExplicitIdentity),
            Decision::NotAllowed => Err(Denial::NoIdentityAllow),
        };
    };
    let root = format!("arn:aws:iam::{account}:root");
    let direct = key_policy.evaluate(request, Who::Principals(&[caller]));
    let delegated = key_policy.evaluate(request, Who::Principals(&[&root, account]));
    if direct == Decision::ExplicitDeny || delegated == Decision::ExplicitDeny {
        return Err(Denial::ExplicitResource);
    }
    match (direct, delegated, by_identity) {
        (_, _, Decision::ExplicitDeny) => Err(Denial::ExplicitIdentity),
        (Decision::Allow, _, _) | (_, Decision::Allow, Decision::Allow) => Ok(()),
        (_, Decision::Allow, _) => Err(Denial::NoIdentityAllow),
        _ => Err(Denial::NoResourceAllow),
    }
}
