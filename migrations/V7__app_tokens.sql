-- Kendali schema v7: service applications without an MQTT client publish
-- over HTTP (POST /api/ingest/{city}/apps/{service}/events and
-- /api/ingest/{city}/kpi/{service}), each with tokens scoped to one city and
-- one service (`kendali apps add`). An application may hold several tokens
-- at once, so that a new one can be deployed before the old is revoked.

CREATE TABLE app_tokens (
    -- The token's public name in lists and revocations: the first 8 hex
    -- digits of token_key.
    id        text        PRIMARY KEY,
    city      text        NOT NULL,
    service   text        NOT NULL,
    -- SHA-256 of the token: the database never holds a usable token.
    token_key text        NOT NULL UNIQUE,
    created   timestamptz NOT NULL DEFAULT now(),
    revoked   timestamptz
);
CREATE INDEX app_tokens_app ON app_tokens (city, service);
