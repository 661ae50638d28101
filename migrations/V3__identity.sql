-- Kendali schema v3: who may act. Users and their roles, wall displays,
-- server-side sessions (revocable), and the append-only, hash-chained audit.

CREATE TABLE users (
    username      text        PRIMARY KEY,
    roles         text[]      NOT NULL,
    -- A traffic officer's scope; empty arrays mean every city / district.
    cities        text[]      NOT NULL DEFAULT '{}',
    districts     text[]      NOT NULL DEFAULT '{}',
    -- Argon2id, as a PHC string.
    password_hash text        NOT NULL,
    disabled      boolean     NOT NULL DEFAULT false,
    created       timestamptz NOT NULL DEFAULT now(),
    changed       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE displays (
    name      text        PRIMARY KEY,
    layout    text        NOT NULL,
    -- SHA-256 of the display's token: the database never holds a usable token.
    token_key text        NOT NULL UNIQUE,
    created   timestamptz NOT NULL DEFAULT now(),
    revoked   timestamptz
);

CREATE TABLE sessions (
    -- SHA-256 of the cookie's token.
    key       text        PRIMARY KEY,
    username  text        REFERENCES users ON DELETE CASCADE,
    display   text        REFERENCES displays ON DELETE CASCADE,
    created   timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    expires   timestamptz NOT NULL,
    addr      text        NOT NULL,
    revoked   timestamptz,
    CHECK ((username IS NULL) <> (display IS NULL))
);
CREATE INDEX sessions_username ON sessions (username);

-- V1's `audit` table was never written by any version: replaced by the chained one.
DROP TABLE IF EXISTS audit;

-- One row per login, failed login, logout, revoked session, user or display
-- change and operator action. `hash` = SHA-256(prev_hash, canonical content)
-- (src/identity/audit.rs); `kendali audit verify` recomputes the chain.
CREATE TABLE audit (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL,
    actor     text        NOT NULL,
    role      text        NOT NULL,
    addr      text        NOT NULL,
    action    text        NOT NULL,
    entity    text        NOT NULL,
    outcome   text        NOT NULL,
    detail    text        NOT NULL,
    prev_hash text        NOT NULL,
    hash      text        NOT NULL UNIQUE
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_actor ON audit (actor, at);

-- Append-only: Kendali's own role may not change or remove a row (it owns the
-- table, so the privileges are revoked from it by name), and a trigger
-- refuses it for every role that has not disabled it on purpose. The chain
-- shows any change made around both.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM CURRENT_USER;
