//! The per-viewer response cache: a repeated dashboard costs the session lookup alone; every
//! writer (a mutation, the worker's tables, plain SQL on bff's and Better Auth's tables, plans)
//! changes the answer at once; two viewers never share one; a revoked session gets none; an
//! answer is not served past the instant it changes on its own; GET answers revalidate with
//! `ETag` (304). Each answer is compared with a cache-less instance on the same database.

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use crate::statements::statements;
use crate::support::{TestApp, TestUser, fresh_database};

/// The dashboard, named `name` (statement counts are per operation name, for the whole
/// process: each test counts its own).
fn dashboard_named(name: &str) -> String {
    format!(
        "query {name} {{ viewer {{ id name subscription {{ plan status }} \
         credits {{ balance freePhotosRemaining }} usage {{ metric used limit windowStart windowEnd }} \
         photoJobs(first: 20) {{ totalCount nodes {{ id status cost groupName }} }} }} }}"
    )
}

/// A cached instance and a cache-less one on one database.
async fn pair() -> (TestApp, TestApp) {
    bff::metrics::install();
    let database_url = fresh_database().await;
    let cached = TestApp::spawn_on(database_url.clone(), |_| {}).await;
    let fresh = TestApp::spawn_on(database_url, |env| {
        env.insert("BFF_RESPONSE_CACHE", "off".into());
    })
    .await;
    (cached, fresh)
}

/// The dashboard `name` from the cached instance, checked against a fresh execution.
async fn dashboard(cached: &TestApp, fresh: &TestApp, user: &TestUser, name: &str) -> Value {
    let answer = cached
        .query_as(user, &dashboard_named(name), json!({}))
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let truth = fresh
        .query_as(user, &dashboard_named(&format!("{name}Fresh")), json!({}))
        .await;
    assert_eq!(
        answer, truth,
        "the cached answer differs from a fresh execution"
    );
    answer
}

async fn sql(app: &TestApp, statement: &str) {
    app.db().await.batch_execute(statement).await.unwrap();
}

#[tokio::test]
async fn a_cached_dashboard_costs_one_statement_and_every_writer_changes_it_at_once() {
    let (cached, fresh) = pair().await;
    let user = cached.user("Cached").await;
    crate::photo_jobs::grant(&cached, &user, 5_000).await;
    dashboard(&cached, &fresh, &user, "CacheWriters").await;
    let first = statements(&cached, "CacheWriters").await;
    assert!(first >= 2.0, "a miss executes: {first}");
    dashboard(&cached, &fresh, &user, "CacheWriters").await;
    assert_eq!(
        statements(&cached, "CacheWriters").await,
        first + 1.0,
        "a hit costs the session lookup alone"
    );

    // A mutation.
    let create = "mutation { createPhotoJob(input: { photoCount: 2, prompt: \"P\", groupName: \"G\" }) { photoJob { id } } }";
    let created = cached.query_as(&user, create, json!({})).await;
    assert!(created.get("errors").is_none(), "{created}");
    let after = dashboard(&cached, &fresh, &user, "CacheWriters").await;
    assert_eq!(after["data"]["viewer"]["photoJobs"]["totalCount"], 1);

    // The worker's writes (plain SQL on photo_jobs, as the worker's mutations make them).
    sql(&cached, &format!("UPDATE photo_jobs SET status = 'PROCESSING', started_at = now(), lease_expires_at = now() + interval '5 minutes', attempts = 1 WHERE user_id = '{}'", user.id)).await;
    let after = dashboard(&cached, &fresh, &user, "CacheWriters").await;
    assert_eq!(
        after["data"]["viewer"]["photoJobs"]["nodes"][0]["status"],
        "PROCESSING"
    );
    // Better Auth's table, by hand.
    sql(
        &cached,
        &format!(
            "UPDATE \"user\" SET name = 'Renamed' WHERE id = '{}'",
            user.id
        ),
    )
    .await;
    let after = dashboard(&cached, &fresh, &user, "CacheWriters").await;
    assert_eq!(after["data"]["viewer"]["name"], "Renamed");
    // Credits (a grant through the ledger), and a subscription as a webhook writes it.
    crate::photo_jobs::grant(&cached, &user, 700).await;
    dashboard(&cached, &fresh, &user, "CacheWriters").await;
    sql(&cached, &format!("INSERT INTO subscriptions (user_id, plan, status, current_period_start, current_period_end) VALUES ('{}', 'PRO', 'ACTIVE', now(), now() + interval '30 days')", user.id)).await;
    let after = dashboard(&cached, &fresh, &user, "CacheWriters").await;
    assert_eq!(after["data"]["viewer"]["subscription"]["plan"], "PRO");
    // Everyone's plans.
    sql(
        &cached,
        "UPDATE plans SET monthly_photo_quota = 999 WHERE code = 'PRO'",
    )
    .await;
    let after = dashboard(&cached, &fresh, &user, "CacheWriters").await;
    assert!(after.to_string().contains("999"), "{after}");
}

#[tokio::test]
async fn two_viewers_sending_the_same_document_never_see_each_others_answers() {
    let (cached, _) = pair().await;
    let users = [cached.user("Ann").await, cached.user("Ben").await];
    let query = "query Same { viewer { id email credits { balance } } }";
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let user = users[i % 2].clone();
            let client = cached.client.clone();
            let url = cached.url("/graphql");
            tokio::spawn(async move {
                let body: Value = client
                    .post(url)
                    .header("cookie", user.cookie())
                    .json(&json!({ "query": query }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                (user.id, body)
            })
        })
        .collect();
    for task in tasks {
        let (id, body) = task.await.unwrap();
        assert_eq!(body["data"]["viewer"]["id"], id.as_str(), "{body}");
    }
}

#[tokio::test]
async fn a_revoked_or_expired_session_never_gets_a_cached_answer() {
    let (cached, _) = pair().await;
    let user = cached.user("Revoked").await;
    for _ in 0..2 {
        assert_eq!(
            cached.viewer_id(&[("cookie", user.cookie())]).await,
            Some(user.id.clone())
        );
    }
    sql(&cached, &format!("UPDATE session SET \"expiresAt\" = now() - interval '1 second' WHERE \"userId\" = '{}'", user.id)).await;
    assert_eq!(cached.viewer_id(&[("cookie", user.cookie())]).await, None);
    let other = cached.user("Signed out").await;
    cached.viewer_id(&[("cookie", other.cookie())]).await;
    sql(
        &cached,
        &format!("DELETE FROM session WHERE \"userId\" = '{}'", other.id),
    )
    .await;
    assert_eq!(cached.viewer_id(&[("cookie", other.cookie())]).await, None);
}

#[tokio::test]
async fn an_answer_is_not_served_past_the_end_of_a_billing_period() {
    let (cached, fresh) = pair().await;
    let user = cached.user("Period").await;
    // A period ending in 2 s: then the plan's entitlements and the usage window change
    // without any write.
    sql(&cached, &format!("INSERT INTO subscriptions (user_id, plan, status, current_period_start, current_period_end) VALUES ('{}', 'PRO', 'ACTIVE', now() - interval '1 day', now() + interval '2 seconds')", user.id)).await;
    let before = dashboard(&cached, &fresh, &user, "CachePeriod").await;
    let misses = statements(&cached, "CachePeriod").await;
    dashboard(&cached, &fresh, &user, "CachePeriod").await;
    assert_eq!(
        statements(&cached, "CachePeriod").await,
        misses + 1.0,
        "a hit"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let after = dashboard(&cached, &fresh, &user, "CachePeriod").await;
    assert!(
        statements(&cached, "CachePeriod").await >= misses + 3.0,
        "executed again past the period's end"
    );
    // The usage window was the period; now it is the calendar month.
    assert_ne!(
        before["data"]["viewer"]["usage"][0]["windowEnd"],
        after["data"]["viewer"]["usage"][0]["windowEnd"],
        "{before} {after}"
    );
}

/// An `ETag` names an answer, not an entry of one process's cache: a client holding the
/// current answer gets 304 from an instance that has just computed it (a restart, another
/// replica), and `If-None-Match: *` matches any current answer.
#[tokio::test]
async fn a_cold_cache_revalidates_the_current_answer() {
    let (cached, _) = pair().await;
    let user = cached.user("Returning").await;
    let url = "/graphql?query=query%20Cold%20%7B%20viewer%20%7B%20id%20credits%20%7B%20balance%20%7D%20%7D%20%7D";
    let get = async |app: &TestApp, etag: Option<&str>| {
        let mut request = app.client.get(app.url(url)).header("cookie", user.cookie());
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.send().await.unwrap()
    };
    let star = get(&cached, Some("*")).await;
    assert_eq!(
        star.status(),
        304,
        "nothing was kept yet: computed, then matched"
    );
    let etag = star.headers()["etag"].to_str().unwrap().to_owned();
    let restarted = TestApp::spawn_on(cached.database_url.clone(), |_| {}).await;
    let again = get(&restarted, Some(&format!("\"other\", W/{etag}"))).await;
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    let other = get(&restarted, Some("\"other\"")).await;
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn get_answers_revalidate_with_etags() {
    let (cached, fresh) = pair().await;
    let user = cached.user("Mobile").await;
    let url = cached.url("/graphql?query=query%20Etag%20%7B%20viewer%20%7B%20id%20credits%20%7B%20balance%20%7D%20%7D%20%7D");
    let get = async |etag: Option<&str>| {
        let mut request = cached.client.get(&url).header("cookie", user.cookie());
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.send().await.unwrap()
    };
    let first = get(None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "private, no-cache");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["data"]["viewer"]["id"], user.id.as_str());
    let before = statements(&cached, "Etag").await;
    let again = get(Some(&etag)).await;
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.bytes().await.unwrap().is_empty());
    assert_eq!(
        statements(&cached, "Etag").await,
        before + 1.0,
        "the lookup alone"
    );
    // Another viewer's tag is nobody else's.
    let other = cached.user("Other").await;
    let foreign = cached
        .client
        .get(&url)
        .header("cookie", other.cookie())
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 200);
    // A write: a new answer and a new tag.
    crate::photo_jobs::grant(&cached, &user, 300).await;
    let changed = get(Some(&etag)).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"], etag.as_str());
    // POST answers carry no validator; the cache-less instance none either.
    let posted = cached
        .client
        .post(cached.url("/graphql"))
        .header("cookie", user.cookie())
        .json(&json!({ "query": "{ viewer { id } }" }))
        .send()
        .await
        .unwrap();
    assert!(posted.headers().get("etag").is_none());
    let plain = fresh
        .client
        .get(fresh.url("/graphql?query=%7Bviewer%7Bid%7D%7D"))
        .header("cookie", user.cookie())
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("etag").is_none());
    // Every GET answer says it is the caller's, those without a validator that it is not
    // to be stored at all: executed ones, anonymous ones, refusals (the finding: none of
    // these said anything, so a shared cache could keep one person's answer).
    for (app, query, cookie) in [
        (&fresh, "%7Bviewer%7Bid%7D%7D", true),
        (&cached, "%7Bviewer%7Bid%7D%7D", true),
        (&cached, "%7Bplans%7Bcode%7D%7D", false),
        (&cached, "%7Bnope%7D", true),
        (&cached, "mutation%7BdeleteAccount%7D", true),
    ] {
        let mut request = app.client.get(app.url(&format!("/graphql?query={query}")));
        if cookie {
            request = request.header("cookie", user.cookie());
        }
        let answer = request.send().await.unwrap();
        let headers = answer.headers();
        assert_eq!(headers["cache-control"], "private, no-store", "{query}");
        assert_eq!(headers["vary"], "Cookie, Authorization", "{query}");
    }
}

#[tokio::test]
async fn a_row_moved_to_another_person_or_a_truncated_table_changes_both_answers() {
    let (cached, fresh) = pair().await;
    let from = cached.user("From").await;
    let to = cached.user("To").await;
    crate::photo_jobs::grant(&cached, &from, 5_000).await;
    let create =
        "mutation { createPhotoJob(input: { photoCount: 1, prompt: \"P\" }) { photoJob { id } } }";
    let created = cached.query_as(&from, create, json!({})).await;
    assert!(created.get("errors").is_none(), "{created}");
    let before = dashboard(&cached, &fresh, &from, "Moved").await;
    assert_eq!(before["data"]["viewer"]["photoJobs"]["totalCount"], 1);
    dashboard(&cached, &fresh, &to, "Moved").await;
    // An operator moves the job (SQL): the first person's kept answer must not survive it.
    sql(
        &cached,
        &format!(
            "UPDATE photo_jobs SET user_id = '{}' WHERE user_id = '{}'",
            to.id, from.id
        ),
    )
    .await;
    let after = dashboard(&cached, &fresh, &from, "Moved").await;
    assert_eq!(after["data"]["viewer"]["photoJobs"]["totalCount"], 0);
    let theirs = dashboard(&cached, &fresh, &to, "Moved").await;
    assert_eq!(theirs["data"]["viewer"]["photoJobs"]["totalCount"], 1);
    // TRUNCATE names no rows: every kept answer goes.
    sql(&cached, "TRUNCATE usage_counters").await;
    let truncated = dashboard(&cached, &fresh, &to, "Moved").await;
    assert_eq!(
        truncated["data"]["viewer"]["usage"][0]["used"], 0,
        "{truncated}"
    );
}

#[tokio::test]
async fn a_query_the_lean_lookup_serves_is_not_kept() {
    let (cached, _) = pair().await;
    let user = cached.user("Lean").await;
    let query = "query CacheLean { viewer { id photoJobs(first: 5) { totalCount } } }";
    cached.query_as(&user, query, json!({})).await;
    let once = statements(&cached, "CacheLean").await;
    assert_eq!(once, 2.0, "the lean lookup and the page");
    cached.query_as(&user, query, json!({})).await;
    assert_eq!(statements(&cached, "CacheLean").await, 4.0);
}

#[tokio::test]
async fn with_the_cache_off_every_query_executes() {
    let (_, fresh) = pair().await;
    let user = fresh.user("Uncached").await;
    let query = "query Uncached { viewer { id photoJobs(first: 5) { totalCount } } }";
    fresh.query_as(&user, query, json!({})).await;
    let once = statements(&fresh, "Uncached").await;
    fresh.query_as(&user, query, json!({})).await;
    assert_eq!(statements(&fresh, "Uncached").await, once * 2.0);
}

#[tokio::test]
async fn an_answer_with_presigned_urls_is_served_for_half_their_life_only() {
    let store = crate::uploads::Store::start().await;
    let app = TestApp::spawn_with(|env| {
        store.test_env(env);
        env.insert("BFF_PRESIGNED_URL_SECONDS", "30".into());
    })
    .await;
    bff::metrics::install();
    let user = app.user("Photos").await;
    crate::photo_jobs::grant(&app, &user, 1_000).await;
    let jpeg: &[u8] = include_bytes!("../../src/dev/demo/sunrise.jpg");
    let ids = crate::uploads::uploaded(&app, &user, &[("a.jpg", "image/jpeg", jpeg)]).await;
    let create = "mutation($input: CreatePhotoJobInput!) { createPhotoJob(input: $input) { photoJob { id } } }";
    let created = app
        .query_as(
            &user,
            create,
            json!({ "input": { "prompt": "p", "uploadIds": ids } }),
        )
        .await;
    assert!(created.get("errors").is_none(), "{created}");
    // (With the viewer's credits: a query of the lean lookup alone is not kept.)
    let query = "query CacheUrls { viewer { credits { balance } photoJobs(first: 1) { nodes { photos { url } } } } }";
    let url = |body: &Value| {
        body["data"]["viewer"]["photoJobs"]["nodes"][0]["photos"][0]["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = url(&app.query_as(&user, query, json!({})).await);
    // Within half the URL's 30 s: the same answer, from memory.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(url(&app.query_as(&user, query, json!({})).await), first);
    // Past it: a fresh URL, good for 30 s again.
    tokio::time::sleep(std::time::Duration::from_secs(14)).await;
    let later = url(&app.query_as(&user, query, json!({})).await);
    assert_ne!(later, first, "a URL past half its life was served again");
    let (status, _) = {
        let response = reqwest::get(&later).await.unwrap();
        (response.status().as_u16(), response.bytes().await.unwrap())
    };
    assert_eq!(status, 200);
}
