//! Plans and what they entitle to.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::schema::plans;
use crate::db::states::db_enum;

db_enum! {
    /// A subscription plan.
    #[graphql(name = "Plan")]
    PlanCode {
        /// No subscription: the free allowance, then credits at the free price.
        Free => "FREE",
        /// The entry paid plan.
        Basic => "BASIC",
        /// For professionals.
        Pro => "PRO",
        /// Unlimited photos.
        Enterprise => "ENTERPRISE",
    }
}

/// The plan every user without a subscription (or with one not in good standing) is on.
pub(crate) const FREE: PlanCode = PlanCode::Free;

/// A plan row: its entitlements and prices.
#[derive(Queryable, Selectable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = plans, check_for_backend(diesel::pg::Pg))]
pub struct Plan {
    /// `FREE`, `BASIC`, `PRO` or `ENTERPRISE`.
    pub code: PlanCode,
    /// Human-readable name.
    pub name: String,
    /// Photos per usage window; `None` is unlimited.
    pub monthly_photo_quota: Option<i32>,
    /// Price of a photo beyond the free allowance, in cents.
    pub price_per_photo_cents: i64,
    /// Most photos one job may have.
    pub max_photos_per_job: i32,
    /// Monthly price in cents.
    pub monthly_price_cents: i64,
    /// The Stripe Price that subscribes to this plan.
    pub stripe_price_id: Option<String>,
    /// Bytes of photos and results the plan may keep in storage; `None` is unlimited.
    pub storage_bytes_limit: Option<i64>,
}

impl Plan {
    /// The plan with this code.
    pub async fn find(conn: &mut impl crate::db::request::Db, code: PlanCode) -> QueryResult<Plan> {
        plans::table
            .find(code)
            .select(Plan::as_select())
            .get_result(conn)
            .await
    }

    /// The code of the plan sold at Stripe price `price_id`.
    pub async fn for_price(
        conn: &mut impl crate::db::request::Db,
        price_id: &str,
    ) -> QueryResult<Option<PlanCode>> {
        plans::table
            .filter(plans::stripe_price_id.eq(price_id))
            .select(plans::code)
            .first(conn)
            .await
            .optional()
    }
}
