//! `changePlan`: an admin moves a person's subscription through Stripe; support may not; a
//! refused or failed change calls nothing or changes nothing, and leaves no audit row.

use serde_json::json;

use super::{as_staff, audit_rows, staff};
use crate::stripe::{billing_app, deliver, event, subscription};
use crate::support::first_code;

const CHANGE: &str = "mutation($input: ChangePlanInput!) {
  changePlan(input: $input) { plan status stripeSubscriptionId cancelAtPeriodEnd } }";

#[tokio::test]
async fn an_admin_changes_a_plan_through_stripe_and_nothing_else_changes_anything() {
    let (app, fake) = billing_app().await;
    let person = app.user("Subscriber").await;
    let support = staff(&app, "Sam", "support").await;
    let admin = staff(&app, "Ada", "admin").await;
    let input = |user: &str, plan: &str, reason: &str| json!({ "input": { "userId": user, "plan": plan, "reason": reason } });
    let code = |body: &serde_json::Value| first_code(body).to_owned();

    // No subscription yet: a new one starts only with the person's own payment.
    let body = as_staff(&app, &admin, CHANGE, input(&person.id, "PRO", "upgrade")).await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    assert!(fake.requests().is_empty(), "Stripe was called");

    let basic = subscription("sub_7", "cus_7", &person, "price_basic", "active", true);
    fake.put_subscription(basic.clone());
    let created = chrono::Utc::now().timestamp() - 60;
    deliver(
        &app,
        &event("evt_7", "customer.subscription.created", created, basic),
    )
    .await;

    // Refused before Stripe is called: support, the free plan, the same plan, nobody, no reason.
    for (who, variables, expected) in [
        (&support, input(&person.id, "PRO", "upgrade"), "FORBIDDEN"),
        (
            &admin,
            input(&person.id, "FREE", "downgrade"),
            "BAD_USER_INPUT",
        ),
        (&admin, input(&person.id, "BASIC", "again"), "CONFLICT"),
        (&admin, input("nobody", "PRO", "upgrade"), "NOT_FOUND"),
        (&admin, input(&person.id, "PRO", "   "), "BAD_USER_INPUT"),
    ] {
        let body = as_staff(&app, who, CHANGE, variables.clone()).await;
        assert_eq!(code(&body), expected, "{variables}: {body}");
    }
    assert!(fake.requests().is_empty(), "Stripe was called");

    // Stripe refuses: nothing changes, no audit row.
    fake.fail_next(402, "card_error", "Your card was declined.");
    let body = as_staff(&app, &admin, CHANGE, input(&person.id, "PRO", "upgrade")).await;
    assert!(body["errors"].is_array(), "{body}");
    assert_eq!(audit_rows(&app).await, 0);
    let plan = app
        .query_as(&person, "{ viewer { subscription { plan } } }", json!({}))
        .await;
    assert_eq!(plan["data"]["viewer"]["subscription"]["plan"], "BASIC");

    let body = as_staff(
        &app,
        &admin,
        CHANGE,
        input(&person.id, "PRO", "goodwill upgrade"),
    )
    .await;
    assert_eq!(
        body["data"]["changePlan"],
        json!({ "plan": "PRO", "status": "ACTIVE", "stripeSubscriptionId": "sub_7", "cancelAtPeriodEnd": false }),
        "{body}"
    );
    let update = fake.requests().pop().unwrap();
    assert_eq!(update.route, "POST /v1/subscriptions/sub_7");
    assert_eq!(update.form["items[0][id]"], "si_1");
    assert_eq!(update.form["items[0][price]"], "price_pro");
    assert_eq!(update.form["proration_behavior"], "create_prorations");
    // The person sees it at once (Stripe's answer is mirrored; its webhook will agree).
    let plan = app
        .query_as(
            &person,
            "{ viewer { subscription { plan cancelAtPeriodEnd } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        plan["data"]["viewer"]["subscription"],
        json!({ "plan": "PRO", "cancelAtPeriodEnd": false })
    );

    assert_eq!(audit_rows(&app).await, 1);
    let log = as_staff(
        &app,
        &admin,
        "query($t: ID) { auditLog(targetId: $t) { nodes { actorId actorRole action reason before after } } }",
        json!({ "t": person.id }),
    )
    .await;
    assert_eq!(
        log["data"]["auditLog"]["nodes"],
        json!([{
            "actorId": admin.id, "actorRole": "admin", "action": "CHANGE_PLAN", "reason": "goodwill upgrade",
            "before": { "plan": "BASIC", "stripeSubscriptionId": "sub_7" },
            "after": { "plan": "PRO", "stripeSubscriptionId": "sub_7" },
        }]),
        "{log}"
    );
}
