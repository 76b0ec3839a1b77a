//! Users, sessions and demo data for `bff dev` and the tests, written the way Better Auth
//! and bff would write them.

use crate::db::credits::CreditTransactionKind;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::better_auth::{session, users};
use crate::db::credits::{Change, CreditAccount};
use crate::db::schema::{
    credit_accounts, photo_jobs, photo_uploads, subscriptions, usage_counters,
};
use crate::db::usage;
use crate::storage::Store;

/// The demo user's id (32 characters of `[A-Za-z0-9]`, like Better Auth's).
pub const DEMO_USER_ID: &str = "DemoUser000000000000000000000001";
/// The demo user's email.
pub const DEMO_EMAIL: &str = "demo@example.com";
/// The demo user's password, for signing in to the example app (the account is public: `bff
/// dev` prints it).
pub const DEMO_PASSWORD: &str = "bff-demo-password";
/// [`DEMO_PASSWORD`] as Better Auth stores it (scrypt, N 16384, r 16, p 1, 64 bytes, as
/// `salt:key` in hex), made by Better Auth's own `hashPassword`; a fixed salt is no loss for a
/// password printed on the screen.
const DEMO_PASSWORD_HASH: &str = "b15abac99313b3d1001a8a13e74a3b48:64ef2aee3af928f3c04880689d9dd6127280419e77a9876ea88635087313362a7f9a35c29648682498479af2dbb60971cb8b9abf832fffa48b51198fa35fd0de";

/// A random id or token like Better Auth's: 32 characters of `[A-Za-z0-9]`.
pub fn random_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(32);
    while out.len() < 32 {
        for byte in uuid::Uuid::new_v4().as_bytes() {
            // 248 = 4 × 62: rejecting larger bytes keeps the choice uniform.
            if *byte < 248 && out.len() < 32 {
                out.push(ALPHABET[(*byte % 62) as usize] as char);
            }
        }
    }
    out
}

/// Inserts a Better Auth user.
pub async fn create_user(
    conn: &mut AsyncPgConnection,
    id: &str,
    name: &str,
    email: &str,
) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id),
            users::name.eq(name),
            users::email.eq(email),
            users::email_verified.eq(true),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Inserts a Better Auth session for `user_id` expiring at `expires_at`; returns its token.
pub async fn create_session(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    expires_at: DateTime<Utc>,
) -> QueryResult<String> {
    let token = random_token();
    diesel::insert_into(session::table)
        .values((
            session::id.eq(random_token()),
            session::token.eq(&token),
            session::expires_at.eq(expires_at),
            session::updated_at.eq(Utc::now()),
            session::user_id.eq(user_id),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// Gives the demo user the email-and-password account Better Auth signs in with (provider
/// `credential`, as Better Auth's sign-up writes it), unless it has one.
pub async fn demo_password(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    use diesel::sql_types::Text;
    diesel::sql_query(
        r#"INSERT INTO account (id, "accountId", "providerId", "userId", password, "updatedAt")
           SELECT $1, $2, 'credential', $2, $3, now()
           WHERE EXISTS (SELECT 1 FROM "user" WHERE id = $2)
             AND NOT EXISTS (SELECT 1 FROM account WHERE "userId" = $2 AND "providerId" = 'credential')"#,
    )
    .bind::<Text, _>(random_token())
    .bind::<Text, _>(DEMO_USER_ID)
    .bind::<Text, _>(DEMO_PASSWORD_HASH)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A fresh seven-day session for the demo user (Better Auth's default lifetime).
pub async fn demo_session(conn: &mut AsyncPgConnection) -> QueryResult<String> {
    create_session(conn, DEMO_USER_ID, Utc::now() + Duration::days(7)).await
}

/// Seeds the demo user unless present: a PRO subscription in its current period, credits
/// with a consistent ledger, about 30 photo jobs across groups and statuses, and usage.
pub async fn demo(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    use diesel_async::AsyncConnection;
    let exists: i64 = users::table
        .filter(users::id.eq(DEMO_USER_ID))
        .count()
        .get_result(conn)
        .await?;
    if exists > 0 {
        return Ok(());
    }
    conn.transaction(async |conn| {
        let now = Utc::now();
        create_user(conn, DEMO_USER_ID, "Dee Demo", DEMO_EMAIL).await?;
        let period_start = now - Duration::days(10);
        let period_end = now + Duration::days(20);
        diesel::insert_into(subscriptions::table)
            .values((
                subscriptions::user_id.eq(DEMO_USER_ID),
                subscriptions::plan.eq("PRO"),
                subscriptions::status.eq("ACTIVE"),
                subscriptions::stripe_customer_id.eq("cus_demo"),
                subscriptions::stripe_subscription_id.eq("sub_demo"),
                subscriptions::current_period_start.eq(period_start),
                subscriptions::current_period_end.eq(period_end),
            ))
            .execute(conn)
            .await?;
        seed_credits(conn, DEMO_USER_ID, now, period_start, period_end).await?;
        seed_notifications(conn, DEMO_USER_ID).await
    })
    .await
}

async fn seed_credits(
    conn: &mut AsyncPgConnection,
    user_id: &str,
    now: DateTime<Utc>,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
) -> QueryResult<()> {
    let apply = |kind, amount_cents, description, photo_job_id| Change {
        user_id,
        kind,
        amount_cents,
        description,
        photo_job_id,
        purchase_id: None,
    };
    CreditAccount::apply(
        conn,
        &apply(CreditTransactionKind::Grant, 500, "Welcome credits", None),
    )
    .await?;
    // A pack bought through Checkout: the purchase, paid, and its credits in the ledger.
    crate::db::purchases::NewPurchase {
        user_id,
        stripe_checkout_session_id: "cs_demo_welcome",
        pack: "LARGE",
        amount_cents: 5_000,
        currency: "usd",
        credits_cents: 10_000,
        status: crate::db::purchases::PurchaseStatus::Pending,
    }
    .insert(conn)
    .await?;
    let paid =
        crate::db::purchases::Purchase::complete(conn, "cs_demo_welcome", Some("pi_demo_welcome"))
            .await?;
    CreditAccount::apply(
        conn,
        &Change {
            purchase_id: paid.map(|(id, _, _)| id),
            ..apply(
                CreditTransactionKind::Purchase,
                10_000,
                "Credit pack: 100.00",
                None,
            )
        },
    )
    .await?;

    const GROUPS: [Option<&str>; 4] = [
        Some("Wedding"),
        Some("Product shots"),
        Some("Headshots"),
        None,
    ];
    const STATUSES: [&str; 6] = [
        "COMPLETED",
        "COMPLETED",
        "PROCESSING",
        "PENDING",
        "FAILED",
        "CANCELED",
    ];
    const PROMPTS: [&str; 5] = [
        "Remove the background and add soft studio light",
        "Warm film look, lift the shadows",
        "Crisp black and white with high contrast",
        "Retouch skin gently, keep freckles",
        "Square crop centred on the subject",
    ];
    let free_allowance = 3;
    let mut free_used = 0;
    let mut photos_in_window = 0;
    for i in (0..30i64).rev() {
        let created_at = now - Duration::hours(7 * i + 1);
        let status = STATUSES[(i % 6) as usize];
        let photo_count = 1 + ((i * 7) % 12) as i32;
        let free = (free_allowance - free_used).min(photo_count);
        free_used += free;
        let cost_cents = i64::from(photo_count - free) * 30;
        let finished = matches!(status, "COMPLETED" | "FAILED" | "CANCELED");
        let job_id: i64 = diesel::insert_into(photo_jobs::table)
            .values((
                photo_jobs::user_id.eq(user_id),
                photo_jobs::prompt.eq(PROMPTS[(i % 5) as usize]),
                photo_jobs::photo_count.eq(photo_count),
                photo_jobs::cost_cents.eq(cost_cents),
                photo_jobs::free_photos_applied.eq(free),
                photo_jobs::status.eq(status),
                photo_jobs::download_url.eq((status == "COMPLETED")
                    .then(|| format!("https://files.example.com/demo/{i}.zip"))),
                photo_jobs::group_name.eq(GROUPS[(i % 4) as usize]),
                photo_jobs::failure_reason
                    .eq((status == "FAILED").then_some("The photos could not be decoded")),
                photo_jobs::created_at.eq(created_at),
                photo_jobs::updated_at.eq(created_at),
                photo_jobs::started_at
                    .eq((status != "PENDING" && status != "CANCELED").then_some(created_at)),
                photo_jobs::finished_at.eq(finished.then_some(created_at + Duration::minutes(5))),
            ))
            .returning(photo_jobs::id)
            .get_result(conn)
            .await?;
        if cost_cents > 0 {
            CreditAccount::apply(
                conn,
                &apply(
                    CreditTransactionKind::JobCharge,
                    -cost_cents,
                    "Photo job",
                    Some(job_id),
                ),
            )
            .await?;
        }
        if matches!(status, "FAILED" | "CANCELED") {
            if cost_cents > 0 {
                CreditAccount::apply(
                    conn,
                    &apply(
                        CreditTransactionKind::JobRefund,
                        cost_cents,
                        "Refund",
                        Some(job_id),
                    ),
                )
                .await?;
            }
        } else if created_at >= period_start {
            photos_in_window += photo_count;
        }
    }
    diesel::update(credit_accounts::table.find(user_id))
        .set(credit_accounts::free_photos_used.eq(free_used))
        .execute(conn)
        .await?;
    diesel::insert_into(usage_counters::table)
        .values((
            usage_counters::user_id.eq(user_id),
            usage_counters::metric.eq(usage::PHOTOS),
            usage_counters::window_start.eq(period_start),
            usage_counters::window_end.eq(period_end),
            usage_counters::count.eq(photos_in_window),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// A few notifications about the newest finished jobs, written by `bff_notify` as the
/// triggers write them and dated when their job finished: the oldest read, its email sent;
/// the others unread, their email (one, batched) due at once, so `bff dev` sends it at start
/// and it shows at `/dev/mail`.
async fn seed_notifications(conn: &mut AsyncPgConnection, user_id: &str) -> QueryResult<()> {
    diesel::sql_query(
        "SELECT bff_notify(user_id, 'JOB_' || status, \
                jsonb_build_object('prompt', prompt, 'photoCount', photo_count, \
                                   'failureReason', failure_reason), p_job => id) \
         FROM (SELECT * FROM photo_jobs WHERE user_id = $1 AND status IN ('COMPLETED', 'FAILED') \
               ORDER BY finished_at DESC, id DESC LIMIT 3) newest \
         ORDER BY finished_at, id",
    )
    .bind::<diesel::sql_types::Text, _>(user_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE notifications n SET created_at = j.finished_at \
         FROM photo_jobs j WHERE n.photo_job_id = j.id AND n.user_id = $1",
    )
    .bind::<diesel::sql_types::Text, _>(user_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE notifications SET read_at = created_at + interval '10 minutes' \
         WHERE id = (SELECT min(id) FROM notifications WHERE user_id = $1)",
    )
    .bind::<diesel::sql_types::Text, _>(user_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE notification_deliveries d SET created_at = n.created_at, not_before = n.created_at, \
           state = CASE WHEN n.read_at IS NULL THEN d.state ELSE 'SENT' END, \
           finished_at = CASE WHEN n.read_at IS NULL THEN NULL ELSE n.created_at END, \
           message_id = CASE WHEN n.read_at IS NULL THEN NULL ELSE d.id END \
         FROM notifications n WHERE d.notification_id = n.id AND n.user_id = $1",
    )
    .bind::<diesel::sql_types::Text, _>(user_id)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The demo photos: small gradients made with Pillow (JPEG, PNG, WebP), and their "processed"
/// versions (grayscale JPEGs) in a ZIP, as a worker would upload it.
const DEMO_PHOTOS: [(&str, &str, &[u8]); 4] = [
    (
        "sunrise.jpg",
        "image/jpeg",
        include_bytes!("demo/sunrise.jpg"),
    ),
    (
        "forest.jpg",
        "image/jpeg",
        include_bytes!("demo/forest.jpg"),
    ),
    ("sea.png", "image/png", include_bytes!("demo/sea.png")),
    (
        "studio.webp",
        "image/webp",
        include_bytes!("demo/studio.webp"),
    ),
];
const DEMO_RESULT: &[u8] = include_bytes!("demo/result.zip");
/// How many of the demo user's newest jobs get photos (queued and running ones all do, so a
/// worker's claim always finds inputs).
const JOBS_WITH_PHOTOS: usize = 6;

/// Gives the demo user's newest jobs their photos in storage, and the completed ones among
/// them a result, unless the demo user already has uploads. The objects are written first,
/// then the rows, in one transaction.
pub async fn demo_photos(conn: &mut AsyncPgConnection, store: &Store) -> Result<(), String> {
    use diesel_async::AsyncConnection;
    let err = |e: diesel::result::Error| e.to_string();
    let existing: i64 = photo_uploads::table
        .filter(photo_uploads::user_id.eq(DEMO_USER_ID))
        .count()
        .get_result(conn)
        .await
        .map_err(err)?;
    if existing > 0 {
        return Ok(());
    }
    let jobs: Vec<(i64, i32, String)> = photo_jobs::table
        .filter(photo_jobs::user_id.eq(DEMO_USER_ID))
        .order((photo_jobs::created_at.desc(), photo_jobs::id.desc()))
        .select((photo_jobs::id, photo_jobs::photo_count, photo_jobs::status))
        .load(conn)
        .await
        .map_err(err)?;
    let jobs: Vec<_> = jobs
        .into_iter()
        .enumerate()
        .filter(|(i, (_, _, status))| {
            *i < JOBS_WITH_PHOTOS || status == "PENDING" || status == "PROCESSING"
        })
        .map(|(_, job)| job)
        .collect();
    let now = Utc::now();
    let mut photos = Vec::new();
    let mut results = Vec::new();
    for (job_id, count, status) in &jobs {
        for position in 0..*count {
            let (name, content_type, bytes) = DEMO_PHOTOS[position as usize % DEMO_PHOTOS.len()];
            let key = store.upload_key(DEMO_USER_ID);
            store
                .put(&key, content_type, bytes.to_vec())
                .await
                .map_err(|e| e.to_string())?;
            photos.push((*job_id, position, key, name, content_type, bytes.len()));
        }
        if status == "COMPLETED" {
            let key = format!("{}.zip", store.result_key(DEMO_USER_ID, *job_id));
            store
                .put(&key, "application/zip", DEMO_RESULT.to_vec())
                .await
                .map_err(|e| e.to_string())?;
            results.push((*job_id, key));
        }
    }
    conn.transaction(async |conn| {
        for (job_id, position, key, name, content_type, size) in &photos {
            diesel::insert_into(photo_uploads::table)
                .values((
                    photo_uploads::user_id.eq(DEMO_USER_ID),
                    photo_uploads::purpose.eq("PHOTO"),
                    photo_uploads::photo_job_id.eq(job_id),
                    photo_uploads::position.eq(position),
                    photo_uploads::object_key.eq(key),
                    photo_uploads::file_name.eq(name),
                    photo_uploads::content_type.eq(content_type),
                    photo_uploads::byte_size.eq(*size as i64),
                    photo_uploads::url_expires_at.eq(now),
                ))
                .execute(conn)
                .await?;
        }
        for (job_id, key) in &results {
            diesel::insert_into(photo_uploads::table)
                .values((
                    photo_uploads::user_id.eq(DEMO_USER_ID),
                    photo_uploads::purpose.eq("RESULT"),
                    photo_uploads::photo_job_id.eq(job_id),
                    photo_uploads::object_key.eq(key),
                    photo_uploads::file_name.eq(format!("photo-job-{job_id}.zip")),
                    photo_uploads::content_type.eq("application/zip"),
                    photo_uploads::byte_size.eq(DEMO_RESULT.len() as i64),
                    photo_uploads::url_expires_at.eq(now),
                ))
                .execute(conn)
                .await?;
            diesel::update(photo_jobs::table.find(job_id))
                .set((
                    photo_jobs::result_key.eq(key),
                    photo_jobs::download_url.eq(None::<String>),
                ))
                .execute(conn)
                .await?;
        }
        Ok::<_, diesel::result::Error>(())
    })
    .await
    .map_err(err)
}
