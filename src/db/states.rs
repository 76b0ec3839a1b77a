//! The states rows can be in (job status, ledger kind, purchase and subscription status, plan),
//! as Rust enums stored as the `TEXT` the tables' CHECK constraints allow and shown in GraphQL
//! as enums of the same names: no state is written as a string outside `db/` and the seed.

/// Declares an enum, its database text per variant, diesel's `Text` mapping and GraphQL's.
macro_rules! db_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $db:literal),+ $(,)? }) => {
        #[derive(
            async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, Hash,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        $(#[$meta])*
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// The value stored in the database.
            pub const fn as_db(self) -> &'static str {
                match self { $(Self::$variant => $db),+ }
            }

            /// The variant stored as `value`, if any.
            pub fn parse(value: &str) -> Option<Self> {
                match value {
                    $($db => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_db())
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_db(),
                    out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = std::str::from_utf8(value.as_bytes())?;
                Self::parse(text).ok_or_else(|| {
                    format!(concat!("unknown ", stringify!($name), " {:?} in the database"), text)
                        .into()
                })
            }
        }
    };
}
pub(crate) use db_enum;

#[cfg(test)]
mod tests {
    use crate::db::credits::CreditTransactionKind;
    use crate::db::photo_jobs::PhotoJobStatus;
    use crate::db::purchases::PurchaseStatus;
    use crate::db::subscriptions::SubscriptionStatus;

    /// The values a migration's `CHECK (column IN (…))` allows in `table`.
    fn allowed(table: &str, column: &str) -> Vec<String> {
        let mut dirs: Vec<_> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .collect();
        dirs.sort();
        let migrations = dirs
            .iter()
            .map(|dir| std::fs::read_to_string(dir.join("up.sql")).unwrap())
            .collect::<String>();
        // The table's creation, or a later constraint added to it.
        let start = migrations
            .find(&format!("CREATE TABLE {table} ("))
            .unwrap_or_else(|| panic!("no table {table}"));
        let check = format!("CHECK ({column} IN (");
        let mut at = start + migrations[start..].find(&check).expect("a CHECK") + check.len();
        // A later migration may replace it: the last `ALTER TABLE {table} … CHECK ({column} IN (`.
        let alter = format!("ALTER TABLE {table} ADD CONSTRAINT");
        for (position, _) in migrations.match_indices(&alter) {
            let statement =
                &migrations[position..position + migrations[position..].find(';').unwrap()];
            if let Some(offset) = statement.find(&check) {
                at = at.max(position + offset + check.len());
            }
        }
        let list = &migrations[at..at + migrations[at..].find(')').unwrap()];
        list.split(',')
            .map(|value| value.trim().trim_matches('\'').to_owned())
            .collect()
    }

    macro_rules! values {
        ($($variant:expr),+) => { vec![$($variant.as_db().to_owned()),+] };
    }

    #[test]
    fn every_enum_matches_its_columns_check_constraint() {
        use crate::db::stripe::disputes::DisputeStatus as D;
        use crate::db::stripe::events::EventOutcome as E;
        use crate::db::stripe::refunds::RefundStatus as R;
        use crate::db::subscriptions::history::HistoryKind as H;
        assert_eq!(
            allowed("stripe_refunds", "status"),
            values!(R::Pending, R::Succeeded, R::Failed)
        );
        assert_eq!(
            allowed("subscription_history", "kind"),
            values!(H::InvoicePaid, H::PaymentFailed, H::PaymentRefunded)
        );
        use crate::db::uploads::UploadPurpose as U;
        assert_eq!(
            allowed("stripe_disputes", "status"),
            values!(D::Open, D::Won, D::Lost)
        );
        assert_eq!(
            allowed("photo_uploads", "purpose"),
            values!(U::Photo, U::Result)
        );
        assert_eq!(
            allowed("stripe_events", "outcome"),
            values!(
                E::Processing,
                E::Applied,
                E::Ignored,
                E::Malformed,
                E::UnknownCustomer,
                E::NotACreditPack,
                E::UnknownPack,
                E::AwaitingPayment,
                E::AlreadyGranted,
                E::NoPendingPurchase,
                E::UnknownPrice,
                E::Stale,
                E::NotASubscriptionInvoice,
                E::UnknownOrStaleSubscription,
                E::AwaitingPurchase,
                E::SubscriptionPayment,
                E::RefundedDeletedAccount
            )
        );
        use crate::db::account::CleanupAction as A;
        assert_eq!(
            allowed("account_cleanups", "action"),
            values!(A::CancelSubscription, A::DeleteCustomer)
        );
        assert_eq!(
            allowed("checkout_cleanups", "action"),
            values!(A::ExpireCheckout, A::RefundPayment, A::RefundInvoice)
        );
        for action in [A::CancelSubscription, A::DeleteCustomer] {
            assert_eq!(action.queue(), "account_cleanups");
        }
        for action in [A::ExpireCheckout, A::RefundPayment, A::RefundInvoice] {
            assert_eq!(action.queue(), "checkout_cleanups");
        }
        use crate::db::stripe::checkouts::CheckoutState as C;
        assert_eq!(
            allowed("checkout_sessions", "state"),
            values!(C::Open, C::Completed, C::Expired, C::Returned)
        );
        use CreditTransactionKind as K;
        use PhotoJobStatus as J;
        use PurchaseStatus as P;
        use SubscriptionStatus as S;
        assert_eq!(
            allowed("photo_jobs", "status"),
            values!(
                J::Pending,
                J::Processing,
                J::Completed,
                J::Failed,
                J::Canceled
            )
        );
        assert_eq!(
            allowed("credit_ledger", "kind"),
            values!(
                K::Purchase,
                K::Grant,
                K::JobCharge,
                K::JobRefund,
                K::Adjustment,
                K::PurchaseRefund,
                K::DisputeHold,
                K::DisputeRelease
            )
        );
        assert_eq!(
            allowed("purchases", "status"),
            values!(
                P::Pending,
                P::Completed,
                P::Failed,
                P::Refunded,
                P::PartiallyRefunded,
                P::Disputed,
                P::DisputeLost
            )
        );
        assert_eq!(
            allowed("subscriptions", "status"),
            values!(
                S::Active,
                S::Trialing,
                S::PastDue,
                S::Canceled,
                S::Unpaid,
                S::Incomplete,
                S::IncompleteExpired,
                S::Paused
            )
        );
        for value in allowed("photo_jobs", "status") {
            assert_eq!(J::parse(&value).map(J::as_db), Some(value.as_str()));
        }
        assert_eq!(J::parse("pending"), None);
    }
}
