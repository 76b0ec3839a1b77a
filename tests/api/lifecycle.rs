//! The application's life: built once ([`bff::app::App::new`]), its background tasks started
//! in one place and stopped in order.

use std::time::Duration;

use crate::support::{base_env, fresh_database};

/// Every background task the configuration calls for starts with `App::start` (none before),
/// and a stop ends them all at a point of their own choosing: none is left to be aborted.
#[tokio::test]
async fn background_tasks_start_in_one_place_and_stop_in_order() {
    let database_url = fresh_database().await;
    let mut env = base_env(&database_url);
    // A Stripe key and a sync interval add the clean-up sweeper and the sync; Stripe itself is
    // never reached here (nothing is queued, and the sync's calls fail and are retried).
    env.insert("STRIPE_SECRET_KEY", "sk_test_lifecycle".into());
    env.insert("STRIPE_API_BASE", "http://127.0.0.1:9".into());
    env.insert("BFF_STRIPE_SYNC_INTERVAL_SECONDS", "4".into());
    let config = bff::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let pool = bff::db::pool_from_config(&config.database).unwrap();
    let app = bff::app::App::new(&config, pool).unwrap();
    assert_eq!(app.running_tasks(), 0, "building the app starts nothing");
    app.start();
    // The lease sweeper, the change log pruner, the Stripe clean-ups, the Stripe sync, the
    // WebSocket session check.
    assert_eq!(app.running_tasks(), 5);
    app.start();
    assert_eq!(app.running_tasks(), 5, "a second start starts nothing");
    // Let every loop run a pass or two first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.running_tasks(), 5, "no task ended on its own");
    let stopped = app.stop().await;
    assert_eq!((stopped.finished, stopped.aborted), (5, 0));
    assert_eq!(app.running_tasks(), 0);
}
