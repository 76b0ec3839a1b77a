//! Prometheus metrics, recorded through the `metrics` facade; nothing is recorded until the
//! recorder is installed (by the metrics listener, `crate::http::metrics`, on
//! `BFF_METRICS_LISTEN`, never the public port), so a server without it pays nothing.
//!
//! | metric | labels |
//! | --- | --- |
//! | `bff_http_requests_total` | `method`, `route` (the matched path, or `unmatched`), `status` |
//! | `bff_http_request_duration_seconds` (histogram) | `method`, `route` |
//! | `bff_graphql_operations_total` | `operation` (the operation's name; see [`operation_label`]), `code` (`OK` or the first error's `extensions.code`) |
//! | `bff_db_pool_connections` | `state`: `idle`, `in_use`; plus `bff_db_pool_max` and `bff_db_pool_waiting` |
//! | `bff_db_errors_total` | `kind`: `connection` (could not connect), `query` (a statement failed), `pool_timeout`, `transient` (a statement cancelled or a connection lost: answered SERVICE_UNAVAILABLE) |
//! | `bff_stripe_webhook_events_total` | `type` (known event types, else `other`), `outcome` |
//! | `bff_stripe_sync_runs_total` | `outcome`: `ok`, `failed` (Stripe or the database failed, or an event could not be applied) |
//! | `bff_stripe_sync_events_recovered_total` | none: events a sync applied that no webhook had delivered |
//! | `bff_stripe_sync_last_success_timestamp_seconds` | none: when the last successful sync of any process started (Unix time) |
//! | `bff_accounts_deleted_total` | none: accounts deleted through `deleteAccount` |
//! | `bff_account_exports_total` | `outcome`: `written` (the whole document read from the database), `abandoned` (its client left first: the transaction ended then), `failed` (the database or the spool failed), `timed_out` (a download cut off past its time) |
//! | `bff_account_cleanups_total` | `action` (`CANCEL_SUBSCRIPTION`, `DELETE_CUSTOMER`, `EXPIRE_CHECKOUT`, `REFUND_PAYMENT`, `REFUND_INVOICE`), `outcome` (`done`, `failed`: retried later) |
//! | `bff_stripe_checkouts_returned_total` | none: checkouts completed after their person's deletion, whose money was queued to go back |
//! | `bff_storage_deletions_total` | `outcome`: `deleted`, `failed` (retried later) |
//! | `bff_notifications_total` | `channel` (`EMAIL`, `PUSH`), `outcome` (`SENT`, `SKIPPED`: nothing to send to, `PENDING`: to be retried, `FAILED`: after the last attempt or refused for good); plus `bff_notification_send_seconds` (histogram) by `channel` |
//! | `bff_uploads_expired_total` | none: uploads no job claimed in time, deleted |
//! | `bff_redis_up` | `redis`: `limits` (`BFF_REDIS_URL`), `documents` (`BFF_APQ_REDIS_URL`): 1 while it answers, 0 while each instance uses its own state |
//! | `bff_redis_errors_total` | `redis`: commands that failed or timed out |
//! | `bff_redis_fallbacks_total` | `limit`: `rate`, `export`, `apq` (a document), `registrations` (APQ registrations' buckets): decisions made with this instance's own state because Redis was down |
//! | `bff_apq_registrations_total` | `outcome`: `stored` (a paid-for APQ document kept), `refused` (past the client's registrations: not kept) |
//! | `bff_response_cache_total` | `outcome`: `hit`, `miss`, `expired` (found past its instant), `evicted` (dropped for room); plus `bff_response_cache_bytes` |
//! | `bff_build_info` | `version`, `commit`: always 1 |

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// Latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Distinct operation names labelled before the rest become `other`.
const MAX_OPERATION_NAMES: usize = 200;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("bff_http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("bff_notification_send_seconds".into()),
                    LATENCY_BUCKETS,
                )
            })
            .expect("the buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        metrics::gauge!("bff_build_info", "version" => env!("CARGO_PKG_VERSION"), "commit" => env!("BFF_COMMIT")).set(1.0);
        handle
    })
}

/// A response-cache lookup or eviction.
pub fn response_cache(outcome: &'static str) {
    metrics::counter!("bff_response_cache_total", "outcome" => outcome).increment(1);
}

/// The bytes the response cache holds (set when they change, not on every hit).
pub fn response_cache_bytes(bytes: usize) {
    metrics::gauge!("bff_response_cache_bytes").set(bytes as f64);
}

/// Whether the shared Redis answers.
pub fn redis_up(redis: &'static str, up: bool) {
    metrics::gauge!("bff_redis_up", "redis" => redis).set(if up { 1.0 } else { 0.0 });
}

/// A Redis command that failed.
pub fn redis_error(redis: &'static str) {
    metrics::counter!("bff_redis_errors_total", "redis" => redis).increment(1);
}

/// An APQ document a request paid for: kept, or not (past its client's registrations).
pub fn apq_registration(outcome: &'static str) {
    metrics::counter!("bff_apq_registrations_total", "outcome" => outcome).increment(1);
}

/// A decision made locally because Redis was down.
pub fn redis_fallback(limit: &'static str) {
    metrics::counter!("bff_redis_fallbacks_total", "limit" => limit).increment(1);
}

/// Counts one HTTP request and its duration, by route template.
pub fn http_request(method: String, route: String, status: u16, seconds: f64) {
    metrics::counter!("bff_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("bff_http_request_duration_seconds", "method" => method, "route" => route)
        .record(seconds);
}

/// The `operation` label for a GraphQL operation name: the name itself for the first
/// [`MAX_OPERATION_NAMES`] distinct well-formed names, `anonymous` without one, and `other`
/// beyond, so a client cannot grow the series without bound.
pub fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) = name else {
        return "anonymous".to_owned();
    };
    let well_formed = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if !well_formed {
        return "other".to_owned();
    }
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if seen.contains(name) || seen.len() < MAX_OPERATION_NAMES {
        seen.insert(name.to_owned());
        name.to_owned()
    } else {
        "other".to_owned()
    }
}

/// Counts one GraphQL operation.
pub fn graphql_operation(operation: String, code: &str) {
    metrics::counter!("bff_graphql_operations_total", "operation" => operation, "code" => code.to_owned())
        .increment(1);
}

/// Records how many SQL statements an operation sent (the session lookup included).
pub fn graphql_statements(operation: &str, statements: u32) {
    metrics::histogram!("bff_graphql_statements", "operation" => operation.to_owned())
        .record(f64::from(statements));
}

/// Counts one database error of `kind` (`connection`, `query`, `pool_timeout`, `transient`).
pub fn db_error(kind: &'static str) {
    metrics::counter!("bff_db_errors_total", "kind" => kind).increment(1);
}

/// Sets the pool gauges (at each scrape).
pub fn pool(idle: usize, in_use: usize, max: usize, waiting: usize) {
    metrics::gauge!("bff_db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("bff_db_pool_connections", "state" => "in_use").set(in_use as f64);
    metrics::gauge!("bff_db_pool_max").set(max as f64);
    metrics::gauge!("bff_db_pool_waiting").set(waiting as f64);
}

/// Counts one Stripe webhook event by type and outcome (`applied`, `duplicate`, `error`, or
/// why it was not applied). The caller names the type: one bff handles, else `other`.
pub fn stripe_event(event_type: &'static str, outcome: &str) {
    metrics::counter!("bff_stripe_webhook_events_total", "type" => event_type, "outcome" => outcome.to_owned())
        .increment(1);
}

/// Counts one Stripe sync run (`ok`, `failed`) and the events it recovered.
pub fn stripe_sync(outcome: &'static str, recovered: usize) {
    metrics::counter!("bff_stripe_sync_runs_total", "outcome" => outcome).increment(1);
    metrics::counter!("bff_stripe_sync_events_recovered_total").increment(recovered as u64);
}

/// Sets when the last successful Stripe sync (of any process) started.
pub fn stripe_sync_last_success(started: chrono::DateTime<chrono::Utc>) {
    metrics::gauge!("bff_stripe_sync_last_success_timestamp_seconds")
        .set(started.timestamp() as f64);
}

/// Counts one account deleted through `deleteAccount`.
pub fn account_deleted() {
    metrics::counter!("bff_accounts_deleted_total").increment(1);
}

/// A checkout completed for a person who is gone: its money goes back.
pub fn checkout_returned() {
    metrics::counter!("bff_stripe_checkouts_returned_total").increment(1);
}

/// Counts account exports by outcome.
pub fn account_export(outcome: &'static str) {
    metrics::counter!("bff_account_exports_total", "outcome" => outcome).increment(1);
}

/// Counts clean-ups after account deletions by action and outcome (`done`, `failed`).
pub fn account_cleanup(action: &'static str, outcome: &'static str) {
    metrics::counter!("bff_account_cleanups_total", "action" => action, "outcome" => outcome)
        .increment(1);
}

/// Counts objects the storage sweeper deleted, or failed to delete (`deleted`, `failed`).
pub fn storage_deletion(outcome: &'static str, count: usize) {
    metrics::counter!("bff_storage_deletions_total", "outcome" => outcome).increment(count as u64);
}

/// Counts uploads deleted because no job named them in time.
pub fn uploads_expired(count: usize) {
    metrics::counter!("bff_uploads_expired_total").increment(count as u64);
}

/// Counts one notification message sent (or not) by channel and outcome, and how long it took.
pub fn notification_sent(channel: &'static str, outcome: &'static str, took: std::time::Duration) {
    metrics::counter!("bff_notifications_total", "channel" => channel, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("bff_notification_send_seconds", "channel" => channel)
        .record(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded_and_well_formed() {
        assert_eq!(operation_label(None), "anonymous");
        assert_eq!(operation_label(Some("Dashboard")), "Dashboard");
        assert_eq!(operation_label(Some("drop table; --")), "other");
        assert_eq!(operation_label(Some(&"x".repeat(65))), "other");
        for i in 0..MAX_OPERATION_NAMES {
            operation_label(Some(&format!("Op{i}")));
        }
        assert_eq!(operation_label(Some("OneTooMany")), "other");
        assert_eq!(operation_label(Some("Dashboard")), "Dashboard");
    }
}
