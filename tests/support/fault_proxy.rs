//! A fault-injecting HTTP proxy for the KMS wire protocol, put between the operator and moto.
//! It counts calls by operation (`X-Amz-Target`) and, at a configured rate or on a script per
//! operation, answers with a fault instead of (or after) forwarding:
//! throttling, 500/503, a response slower than the client's timeout, a reset connection, or —
//! the nastiest — the call forwarded to moto and its response dropped.
//! It can also enforce per-operation request quotas the way KMS does: a token bucket per
//! operation, account (an assumed role's, see `strict::sts`) and Region (the Region of the
//! request's SigV4 scope), as AWS's quotas are per account and Region (ReplicateKey also
//! spends CreateKey's in the replica Region).
//! Calls that get no fault (or a slow one, or one whose response is dropped) go through the
//! strict KMS layer (`super::strict`), on by default, which makes moto answer as AWS would.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::clock::TestClock;
use super::strict::upstream::{Message, read_message};
use super::strict::{Strict, StrictConfig};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    Throttle,
    InternalError,
    Unavailable,
    Slow,
    Reset,
    DropResponse,
    /// A 400 refusal with this error code and message, as KMS gives for bad input.
    Reject(&'static str, &'static str),
}

pub const ALL_FAULTS: [Fault; 6] = [
    Fault::Throttle,
    Fault::InternalError,
    Fault::Unavailable,
    Fault::Slow,
    Fault::Reset,
    Fault::DropResponse,
];

#[derive(Default)]
struct State {
    calls: BTreeMap<String, u64>,
    injected: BTreeMap<Fault, u64>,
    rate: f64,
    kinds: Vec<Fault>,
    script: HashMap<String, VecDeque<Fault>>,
    /// Requests per second by operation.
    quotas: HashMap<String, f64>,
    /// Tokens left and when they were counted, by (Region, operation).
    buckets: HashMap<(String, String), (f64, Instant)>,
    throttled_by_quota: u64,
}

pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
    strict: Arc<Strict>,
    task: tokio::task::JoinHandle<()>,
}

/// How long a `Slow` answer waits: longer than the test clients' attempt timeout.
pub const SLOW: Duration = Duration::from_millis(1500);

impl FaultProxy {
    /// A proxy in front of moto at `upstream`, with the strict KMS layer at its defaults.
    pub async fn start(upstream: &str) -> Self {
        Self::start_with(upstream, StrictConfig::default()).await
    }

    /// A proxy in front of moto at `upstream`, with the strict layer configured by `strict`
    /// (`StrictConfig::off()` for raw moto).
    pub async fn start_with(upstream: &str, strict: StrictConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let strict = Arc::new(Strict::new(upstream, strict));
        let (shared, layer) = (state.clone(), strict.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, layer.clone(), shared.clone()));
            }
        });
        FaultProxy { url, state, strict, task }
    }

    /// The clock the strict layer reads (advance it to get past a lag).
    pub fn clock(&self) -> TestClock {
        self.strict.config().clock.clone()
    }

    /// The principal `arn` does not exist in IAM for `duration` on the strict layer's clock: a
    /// key policy naming it is refused as malformed until then, as with a new role in AWS.
    pub fn mark_principal_unknown(&self, arn: &str, duration: Duration) {
        self.strict.mark_principal_unknown(arn, duration);
    }

    /// KMS began tracking the key's use `ago` earlier than it did, as for a key made long ago
    /// and never used since.
    pub fn backdate_usage_tracking(&self, key_id: &str, ago: Duration) {
        self.strict.backdate_usage_tracking(key_id, ago);
    }

    /// Faults a share `rate` of all calls at random, with a fault drawn from `kinds`.
    pub fn fault_at_random(&self, rate: f64, kinds: &[Fault]) {
        let mut state = self.state.lock().unwrap();
        state.rate = rate;
        state.kinds = kinds.to_vec();
    }

    /// The next calls of `operation` get these faults, in order.
    pub fn script(&self, operation: &str, faults: &[Fault]) {
        let mut state = self.state.lock().unwrap();
        state.script.entry(operation.to_owned()).or_default().extend(faults.iter().copied());
    }

    /// Throttles each operation beyond `per_second` requests per second, as KMS does.
    pub fn enforce_quotas(&self, quotas: &[(&str, f64)]) {
        let mut state = self.state.lock().unwrap();
        for (op, rps) in quotas {
            state.quotas.insert((*op).to_owned(), *rps);
        }
        state.buckets.clear();
    }

    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn total_calls(&self) -> u64 {
        self.state.lock().unwrap().calls.values().sum()
    }

    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        self.state.lock().unwrap().injected.clone()
    }

    pub fn throttled_by_quota(&self) -> u64 {
        self.state.lock().unwrap().throttled_by_quota
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The quota buckets (`account/Region`, operation) a call of `operation` spends a token of: its
/// own in the account of its caller (`strict`: an assumed role's) and the Region of its
/// signature; ReplicateKey also CreateKey's in the replica Region (AWS's request quotas page).
fn quota_buckets(strict: &Strict, operation: &str, request: &Message) -> Vec<(String, String)> {
    let account = strict.principal(request).account;
    let in_region = |region: &str| format!("{account}/{region}");
    let mut buckets = vec![(in_region(&super::strict::upstream::region_of(request)), operation.to_owned())];
    if operation == "ReplicateKey" {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        if let Some(replica_region) = body["ReplicaRegion"].as_str() {
            buckets.push((in_region(replica_region), "CreateKey".to_owned()));
        }
    }
    buckets
}

/// The fault (if any) for one call of `operation`, and counts the call. Throttled unless every
/// bucket it spends from has a token.
fn decide(state: &Mutex<State>, operation: &str, buckets: Vec<(String, String)>) -> Option<Fault> {
    let mut state = state.lock().unwrap();
    *state.calls.entry(operation.to_owned()).or_default() += 1;
    let now = Instant::now();
    let mut spent = Vec::new();
    for bucket in buckets {
        let Some(rps) = state.quotas.get(&bucket.1).copied() else { continue };
        let burst = rps.max(1.0);
        let (tokens, at) = state.buckets.entry(bucket.clone()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rps).min(burst);
        *at = now;
        if *tokens < 1.0 {
            state.throttled_by_quota += 1;
            return Some(Fault::Throttle);
        }
        spent.push(bucket);
    }
    for bucket in spent {
        if let Some((tokens, _)) = state.buckets.get_mut(&bucket) {
            *tokens -= 1.0;
        }
    }
    let fault = match state.script.get_mut(operation).and_then(VecDeque::pop_front) {
        Some(fault) => Some(fault),
        None if !state.kinds.is_empty() && rand::rng().random_bool(state.rate) => {
            Some(state.kinds[rand::rng().random_range(0..state.kinds.len())])
        }
        None => None,
    };
    if let Some(fault) = fault {
        *state.injected.entry(fault).or_default() += 1;
    }
    fault
}

async fn serve(mut client: TcpStream, strict: Arc<Strict>, state: Arc<Mutex<State>>) {
    loop {
        let Some(request) = read_message(&mut client).await else { return };
        // `TrentService.CreateKey` → `CreateKey`; `ResourceGroupsTaggingAPI_20170126.GetResources`
        // → `GetResources`.
        let operation = (request.header("x-amz-target"))
            .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
            .unwrap_or_else(|| "other".to_owned());
        let fault = decide(&state, &operation, quota_buckets(&strict, &operation, &request));
        let answer = match fault {
            Some(Fault::Throttle) => error_response(400, "ThrottlingException", "Rate exceeded"),
            Some(Fault::InternalError) => {
                error_response(500, "KMSInternalException", "injected internal error")
            }
            Some(Fault::Unavailable) => error_response(503, "DependencyTimeoutException", "injected outage"),
            Some(Fault::Reject(code, message)) => error_response(400, code, message),
            Some(Fault::Reset) => {
                let _ = client.set_zero_linger();
                return;
            }
            Some(Fault::Slow) => {
                tokio::time::sleep(SLOW).await;
                match strict.handle(&request).await {
                    Some(response) => response,
                    None => return,
                }
            }
            Some(Fault::DropResponse) => {
                let _ = strict.handle(&request).await;
                let _ = client.set_zero_linger();
                return;
            }
            None => match strict.handle(&request).await {
                Some(response) => response,
                None => return,
            },
        };
        if client.write_all(&answer).await.is_err() {
            return;
        }
    }
}

fn error_response(status: u16, code: &str, message: &str) -> Vec<u8> {
    let body = format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}");
    let reason = match status {
        400 => "Bad Request",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
