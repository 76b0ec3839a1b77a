DROP TABLE subscription_history;
