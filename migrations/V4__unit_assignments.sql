-- Kendali schema v4: dispatchers' orders to field units (contract v1.1,
-- `city/{city}/units/{unit}/assignment`), kept as the record of who sent
-- which unit where. One row per order, idempotent by its id.

CREATE TABLE unit_assignments (
    assignment_id  uuid        NOT NULL,
    ts             timestamptz NOT NULL,
    city           text        NOT NULL,
    unit           text        NOT NULL,
    action         text        NOT NULL,
    call_id        text        NOT NULL,
    issued_by      text        NOT NULL,
    payload        jsonb       NOT NULL,
    rx             timestamptz NOT NULL,
    PRIMARY KEY (assignment_id)
);
CREATE INDEX unit_assignments_unit ON unit_assignments (city, unit, ts);
CREATE INDEX unit_assignments_call ON unit_assignments (city, call_id);
