// @generated automatically by Diesel CLI.

diesel::table! {
    credit_accounts (user_id) {
        user_id -> Text,
        balance_cents -> Int8,
        free_photos_used -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    credit_ledger (id) {
        id -> Int8,
        user_id -> Text,
        kind -> Text,
        amount_cents -> Int8,
        balance_after_cents -> Int8,
        description -> Text,
        photo_job_id -> Nullable<Int8>,
        purchase_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    credit_packs (code) {
        code -> Text,
        name -> Text,
        credits_cents -> Int8,
        stripe_price_id -> Nullable<Text>,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    photo_jobs (id) {
        id -> Int8,
        user_id -> Text,
        prompt -> Text,
        photo_count -> Int4,
        cost_cents -> Int8,
        free_photos_applied -> Int4,
        status -> Text,
        download_url -> Nullable<Text>,
        group_name -> Nullable<Text>,
        failure_reason -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        lease_expires_at -> Nullable<Timestamptz>,
        attempts -> Int4,
        result_key -> Nullable<Text>,
        progress_done -> Nullable<Int4>,
        progress_total -> Nullable<Int4>,
        progress_stage -> Nullable<Text>,
        progress_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    photo_uploads (id) {
        id -> Int8,
        user_id -> Text,
        purpose -> Text,
        photo_job_id -> Nullable<Int8>,
        position -> Nullable<Int4>,
        object_key -> Text,
        file_name -> Text,
        content_type -> Text,
        byte_size -> Int8,
        url_expires_at -> Timestamptz,
        created_at -> Timestamptz,
        checked_key -> Nullable<Text>,
    }
}

diesel::table! {
    plans (code) {
        code -> Text,
        name -> Text,
        monthly_photo_quota -> Nullable<Int4>,
        price_per_photo_cents -> Int8,
        max_photos_per_job -> Int4,
        monthly_price_cents -> Int8,
        stripe_price_id -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        storage_bytes_limit -> Nullable<Int8>,
    }
}

diesel::table! {
    purchases (id) {
        id -> Int8,
        user_id -> Text,
        stripe_checkout_session_id -> Text,
        stripe_payment_intent_id -> Nullable<Text>,
        pack -> Text,
        amount_cents -> Int8,
        currency -> Text,
        credits_cents -> Int8,
        status -> Text,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        refunded_amount_cents -> Int8,
        credits_reversed_cents -> Int8,
    }
}

diesel::table! {
    stripe_disputes (id) {
        id -> Text,
        payment_intent_id -> Text,
        status -> Text,
        amount_cents -> Int8,
        held_cents -> Int8,
        hold_applied -> Bool,
        released -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    stripe_refunds (id) {
        id -> Text,
        payment_intent_id -> Text,
        amount_cents -> Int8,
        status -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    stripe_syncs (id) {
        id -> Int8,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        listed_since -> Timestamptz,
        succeeded -> Bool,
        events_listed -> Int4,
        events_recovered -> Int4,
        events_failed -> Int4,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    stripe_payment_refunds (payment_intent_id) {
        payment_intent_id -> Text,
        amount_cents -> Int8,
        refunded_cents -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    storage_deletions (id) {
        id -> Int8,
        object_key -> Text,
        not_before -> Timestamptz,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stripe_customers (user_id) {
        user_id -> Text,
        customer_id -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stripe_events (id) {
        id -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        created_at -> Timestamptz,
        livemode -> Bool,
        outcome -> Text,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Int8,
        user_id -> Text,
        plan -> Text,
        status -> Text,
        stripe_customer_id -> Nullable<Text>,
        stripe_subscription_id -> Nullable<Text>,
        stripe_price_id -> Nullable<Text>,
        current_period_start -> Nullable<Timestamptz>,
        current_period_end -> Nullable<Timestamptz>,
        trial_end -> Nullable<Timestamptz>,
        cancel_at_period_end -> Bool,
        canceled_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        stripe_event_created_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    subscription_history (id) {
        id -> Int8,
        user_id -> Text,
        stripe_subscription_id -> Nullable<Text>,
        kind -> Text,
        stripe_object_id -> Text,
        amount_cents -> Int8,
        currency -> Text,
        occurred_at -> Timestamptz,
    }
}

diesel::table! {
    usage_counters (id) {
        id -> Int8,
        user_id -> Text,
        metric -> Text,
        window_start -> Timestamptz,
        window_end -> Timestamptz,
        count -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    notifications (id) {
        id -> Int8,
        user_id -> Text,
        kind -> Text,
        photo_job_id -> Nullable<Int8>,
        purchase_id -> Nullable<Int8>,
        subscription_id -> Nullable<Int8>,
        facts -> Jsonb,
        created_at -> Timestamptz,
        read_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    notification_kinds (kind) {
        kind -> Text,
        email_default -> Bool,
        push_default -> Bool,
        billing -> Bool,
        batched -> Bool,
    }
}

diesel::table! {
    notification_preferences (user_id, kind) {
        user_id -> Text,
        kind -> Text,
        email -> Bool,
        push -> Bool,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    push_devices (token) {
        token -> Text,
        user_id -> Text,
        platform -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(photo_uploads -> photo_jobs (photo_job_id));
diesel::joinable!(subscriptions -> plans (plan));

diesel::allow_tables_to_appear_in_same_query!(
    credit_accounts,
    credit_ledger,
    credit_packs,
    notification_kinds,
    notification_preferences,
    notifications,
    photo_jobs,
    push_devices,
    photo_uploads,
    plans,
    purchases,
    stripe_customers,
    stripe_events,
    storage_deletions,
    stripe_disputes,
    stripe_payment_refunds,
    stripe_refunds,
    stripe_syncs,
    subscription_history,
    subscriptions,
    usage_counters,
);
