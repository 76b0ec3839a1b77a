//! Rules written in two places, checked against each other: the export's money against the
//! `Decimal` scalar, the version-bump triggers against the tables a viewer's query reads, and
//! the response cache's defaults in `docs/caching.md` against the code.

use std::collections::{BTreeMap, BTreeSet};

use bff::config::env::Default as VariableDefault;
use bff::graphql::scalars::Decimal;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::RunQueryDsl;

use crate::support::fresh_database;

#[derive(QueryableByName)]
struct Formatted {
    #[diesel(sql_type = BigInt)]
    cents: i64,
    #[diesel(sql_type = Text)]
    text: String,
}

/// The export formats money in SQL ([`bff::db::export::MONEY`]) exactly as the API's `Decimal`
/// does in Rust: zero, fractions of a unit, negatives, and the ends of `bigint`.
#[tokio::test]
async fn the_exports_money_is_the_apis_decimal() {
    let mut conn = bff::db::connect(&fresh_database().await).await.unwrap();
    let edges: [i64; 14] = [
        0,
        1,
        5,
        -5,
        99,
        -99,
        100,
        1250,
        -1999,
        99_999_999_999_999,
        100_000_000_000_000,
        -123_456_789_012_345_678,
        i64::MAX,
        i64::MIN,
    ];
    let values: Vec<String> = edges.iter().map(|c| format!("('{c}'::bigint)")).collect();
    let rows: Vec<Formatted> = diesel::sql_query(format!(
        "SELECT cents, {} AS text FROM (VALUES {}) AS v(cents) ORDER BY 1",
        bff::db::export::MONEY,
        values.join(", ")
    ))
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), edges.len());
    for row in rows {
        assert_eq!(
            row.text,
            Decimal(row.cents).to_string(),
            "{} cents",
            row.cents
        );
    }
}

#[derive(QueryableByName)]
struct Table {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Reference {
    #[diesel(sql_type = Text)]
    from: String,
    #[diesel(sql_type = Text)]
    to: String,
}

#[derive(QueryableByName)]
struct Trigger {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    function: String,
    #[diesel(sql_type = Integer)]
    events: i32,
}

/// Tables holding a viewer's rows that no viewer's query reads, so their writes need not bump
/// `viewer_versions`. Each says why; a new table goes here only with a reason.
const NOT_READ_BY_VIEWER_QUERIES: &[(&str, &str)] = &[
    ("viewer_versions", "the versions themselves"),
    (
        "checkout_sessions",
        "Stripe Checkout bookkeeping (expiry queue), read by webhooks and mutations",
    ),
    (
        "stripe_customers",
        "a person's Stripe customer id, read by webhooks and billingPortalUrl (a mutation)",
    ),
    (
        "money_owners",
        "anonymises money rows when an account is deleted; read by no query",
    ),
    (
        "notification_deliveries",
        "the delivery queue, read by the senders and the export, which the cache never answers",
    ),
    (
        "push_devices",
        "push tokens, read by the senders and the export; no query lists them",
    ),
    (
        "photo_job_tombstones",
        "deleted jobs for live subscriptions' catch-up; the cache keeps queries only",
    ),
    (
        "viewer_changes",
        "the change log: written only by the statements that bump the version (its triggers \
         fire after the bump), so `changes` answers are keyed by it; pruning changes no data",
    ),
];

/// The functions that bump a viewer's row: on INSERT and DELETE, and on UPDATE (before and
/// after, for a row moved between people).
const VIEWER_BUMPS: [&str; 2] = [
    "bff_bump_viewer_versions",
    "bff_bump_viewer_versions_update",
];

/// Tables everyone's queries read (plans, credit packs): they bump the row `'*'`.
const EVERYONES: &[&str] = &["plans", "credit_packs"];

/// `pg_trigger.tgtype` bits of the events a trigger fires on.
const INSERT: i32 = 1 << 2;
const DELETE: i32 = 1 << 3;
const UPDATE: i32 = 1 << 4;
const TRUNCATE: i32 = 1 << 5;

/// The response cache is never stale only while every write to what a viewer's query reads
/// bumps `viewer_versions`: every table with a `user_id`, or reachable by foreign keys from
/// one, has a bump trigger on INSERT, UPDATE and DELETE and bumps `'*'` on TRUNCATE (or is an
/// exception above); Better Auth's `"user"` row bumps on UPDATE and forgets on DELETE; plans
/// and credit packs bump `'*'` on every write and TRUNCATE.
#[tokio::test]
async fn every_table_a_viewer_reads_bumps_their_version() {
    let mut conn = bff::db::connect(&fresh_database().await).await.unwrap();
    let owned: Vec<Table> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attname = 'user_id'
           AND NOT a.attisdropped",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let references: Vec<Reference> = diesel::sql_query(
        "SELECT f.relname::text AS from, t.relname::text AS to FROM pg_constraint k
         JOIN pg_class f ON f.oid = k.conrelid JOIN pg_class t ON t.oid = k.confrelid
         JOIN pg_namespace n ON n.oid = f.relnamespace
         WHERE k.contype = 'f' AND n.nspname = 'public'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let triggers: Vec<Trigger> = diesel::sql_query(
        "SELECT c.relname::text AS table, p.proname::text AS function,
                t.tgtype::integer AS events
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
         WHERE NOT t.tgisinternal",
    )
    .load(&mut conn)
    .await
    .unwrap();

    // A viewer's rows: those with a user_id, and those whose foreign keys lead to one.
    let mut viewers: BTreeSet<String> = owned.into_iter().map(|t| t.name).collect();
    loop {
        let more: Vec<String> = references
            .iter()
            .filter(|r| viewers.contains(&r.to) && !viewers.contains(&r.from) && r.from != "user")
            .map(|r| r.from.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        viewers.extend(more);
    }
    // Better Auth's tables (`"userId"`) hold sessions and logins, which the lookup checks on
    // every request rather than the cache.
    viewers.retain(|t| !["session", "account", "verification"].contains(&t.as_str()));

    // The events each table's triggers of each function fire on; the viewer bumps as one.
    let mut events: BTreeMap<(&str, &str), i32> = BTreeMap::new();
    for trigger in &triggers {
        let function = match trigger.function.as_str() {
            f if VIEWER_BUMPS.contains(&f) => VIEWER_BUMPS[0],
            f => f,
        };
        *events
            .entry((trigger.table.as_str(), function))
            .or_default() |= trigger.events;
    }
    let fires = |table: &str, function: &str, wanted: i32| {
        events
            .get(&(table, function))
            .is_some_and(|e| e & wanted == wanted)
    };

    let mut missing = Vec::new();
    for table in &viewers {
        let excepted = NOT_READ_BY_VIEWER_QUERIES.iter().any(|(t, _)| t == table);
        let bumps = fires(table, VIEWER_BUMPS[0], INSERT | UPDATE | DELETE);
        if !excepted && !bumps {
            missing.push(format!(
                "{table}: no version bump on each of INSERT, UPDATE and DELETE"
            ));
        }
        if !excepted && !fires(table, "bff_bump_global_version", TRUNCATE) {
            missing.push(format!("{table}: no '*' bump on TRUNCATE"));
        }
        if excepted && bumps {
            missing.push(format!(
                "{table} is an exception but bumps: drop the exception"
            ));
        }
    }
    for (table, _) in NOT_READ_BY_VIEWER_QUERIES {
        if !viewers.contains(*table) {
            missing.push(format!(
                "{table} is an exception but holds no viewer's rows"
            ));
        }
    }
    if !fires("user", "bff_bump_user_version", UPDATE) {
        missing.push("\"user\": no bump on UPDATE".to_owned());
    }
    if !fires("user", "bff_bump_global_version", TRUNCATE) {
        missing.push("\"user\": no '*' bump on TRUNCATE".to_owned());
    }
    if !fires("user", "bff_forget_user_version", DELETE) {
        missing.push("\"user\": the version is not forgotten on DELETE".to_owned());
    }
    for table in EVERYONES {
        let all = INSERT | UPDATE | DELETE | TRUNCATE;
        if !fires(table, "bff_bump_global_version", all) {
            missing.push(format!("{table}: no '*' bump on every write and TRUNCATE"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

/// `docs/caching.md`'s table of settings shows the code's defaults: every variable of
/// `bff::config::cache`, each with its default (`on`; bytes in MiB when whole).
#[test]
fn the_caching_docs_show_the_codes_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/caching.md");
    let text = std::fs::read_to_string(path).unwrap();
    let rows: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix("`BFF_")?.strip_suffix('`')?;
            Some((name, *cells.get(2)?))
        })
        .collect();
    for variable in bff::config::cache::VARIABLES {
        let shown = match variable.default {
            VariableDefault::Number { value, .. } if value % (1 << 20) == 0 => {
                format!("{} MiB", value >> 20)
            }
            VariableDefault::Number { value, .. } => value.to_string(),
            VariableDefault::Value(value) => format!("`{value}`"),
            _ => variable.default_text(),
        };
        let name = variable.name.strip_prefix("BFF_").unwrap();
        assert_eq!(
            rows.get(name).copied(),
            Some(shown.as_str()),
            "docs/caching.md's default of {}",
            variable.name
        );
    }
}
