-- Kendali schema v6: alerts (contract v1.3, `city/{city}/alerts/{alert_id}`).
-- Every transition of every alert, as published: who, when, why, and the
-- alert as it stood after it. Idempotent by the transition's id; the
-- newest row per alert is where the alert stands.

CREATE TABLE alert_events (
    event_id    uuid        NOT NULL,
    ts          timestamptz NOT NULL,
    city        text        NOT NULL,
    alert_id    uuid        NOT NULL,
    rule        text        NOT NULL,
    entity      text        NOT NULL,
    priority    smallint    NOT NULL,
    state       text        NOT NULL,
    transition  text        NOT NULL,
    by_whom     text        NOT NULL,
    reason      text,
    payload     jsonb       NOT NULL,
    rx          timestamptz NOT NULL,
    PRIMARY KEY (event_id)
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, ts);
CREATE INDEX alert_events_city_ts ON alert_events (city, ts);
