-- Kendali schema v1. Runs on plain PostgreSQL (14+); when the timescaledb
-- extension is available Kendali turns the time-series tables into
-- hypertables at start-up (src/store/timescale.rs), on this same schema.
-- Unique keys of time-series tables include their source time column
-- (a hypertable requires it): events are unique by (event_id, ts).

-- ATCS telemetry: one row per approach per controller state message.
CREATE TABLE atcs_telemetry (
    ts            timestamptz NOT NULL,
    city          text        NOT NULL,
    intersection  text        NOT NULL,
    approach      text        NOT NULL,
    mode          text        NOT NULL,
    plan          text        NOT NULL,
    cycle_s       real        NOT NULL,
    phase         integer     NOT NULL,
    green_s       real        NOT NULL,
    flow_vph      real        NOT NULL,
    queue_m       real        NOT NULL,
    saturation    real        NOT NULL,
    detector_ok   boolean     NOT NULL,
    rx            timestamptz NOT NULL
);
CREATE INDEX atcs_telemetry_ts_brin ON atcs_telemetry USING brin (ts);
CREATE INDEX atcs_telemetry_entity ON atcs_telemetry (city, intersection, ts);

-- Per-minute rollup of the telemetry, kept by Kendali on plain PostgreSQL.
CREATE TABLE atcs_minute (
    bucket          timestamptz NOT NULL,
    city            text        NOT NULL,
    intersection    text        NOT NULL,
    approach        text        NOT NULL,
    samples         integer     NOT NULL,
    saturation_avg  real        NOT NULL,
    saturation_max  real        NOT NULL,
    flow_vph_avg    real        NOT NULL,
    queue_m_avg     real        NOT NULL,
    queue_m_max     real        NOT NULL,
    green_s_avg     real        NOT NULL,
    PRIMARY KEY (city, intersection, approach, bucket)
);
CREATE INDEX atcs_minute_bucket ON atcs_minute (bucket);
-- The rollup follows receive time, so late rows (a queue drained after an
-- outage) still reach their minute: it recomputes every minute touched by
-- rows received since its watermark.
CREATE INDEX atcs_telemetry_rx_brin ON atcs_telemetry USING brin (rx);
CREATE TABLE rollup_state (
    name          text        PRIMARY KEY,
    rx_watermark  timestamptz NOT NULL
);

-- Intersection metadata (retained info messages): latest per intersection.
CREATE TABLE intersections (
    city          text        NOT NULL,
    intersection  text        NOT NULL,
    info          jsonb       NOT NULL,
    rx            timestamptz NOT NULL,
    PRIMARY KEY (city, intersection)
);

-- Emergency call events, as published.
CREATE TABLE call_events (
    event_id   uuid        NOT NULL,
    ts         timestamptz NOT NULL,
    city       text        NOT NULL,
    call_id    text        NOT NULL,
    line       text        NOT NULL,
    type       text        NOT NULL,
    category   text,
    priority   smallint,
    agency     text,
    unit       text,
    payload    jsonb       NOT NULL,
    rx         timestamptz NOT NULL,
    PRIMARY KEY (event_id, ts)
);
CREATE INDEX call_events_call ON call_events (city, call_id);
CREATE INDEX call_events_ts ON call_events (ts);

-- The current projection of each call, with the source time of every stage.
CREATE TABLE calls (
    city            text        NOT NULL,
    call_id         text        NOT NULL,
    line            text        NOT NULL,
    stage           text        NOT NULL,
    open            boolean     NOT NULL,
    category        text,
    priority        smallint,
    agency          text,
    unit            text,
    received_at     timestamptz,
    answered_at     timestamptz,
    classified_at   timestamptz,
    dispatched_at   timestamptz,
    en_route_at     timestamptz,
    on_scene_at     timestamptz,
    closed_at       timestamptz,
    abandoned_at    timestamptz,
    transferred_at  timestamptz,
    answer_s        real,
    dispatch_s      real,
    projection      jsonb       NOT NULL,
    rx              timestamptz NOT NULL,
    PRIMARY KEY (city, call_id)
);
CREATE INDEX calls_received ON calls (received_at);
CREATE INDEX calls_open ON calls (city) WHERE open;

-- Field unit status history.
CREATE TABLE unit_status (
    ts       timestamptz NOT NULL,
    city     text        NOT NULL,
    unit     text        NOT NULL,
    agency   text        NOT NULL,
    status   text        NOT NULL,
    lat      double precision,
    lon      double precision,
    call_id  text,
    payload  jsonb       NOT NULL,
    rx       timestamptz NOT NULL,
    PRIMARY KEY (city, unit, ts)
);
CREATE INDEX unit_status_ts ON unit_status (ts);

-- KPI samples of the service applications.
CREATE TABLE kpi_samples (
    ts        timestamptz      NOT NULL,
    city      text             NOT NULL,
    service   text             NOT NULL,
    metric    text             NOT NULL,
    value     double precision NOT NULL,
    unit      text             NOT NULL,
    target    double precision,
    window_s  double precision,
    rx        timestamptz      NOT NULL,
    PRIMARY KEY (city, service, metric, ts)
);
CREATE INDEX kpi_samples_ts ON kpi_samples (ts);

-- Events written by the service applications.
CREATE TABLE app_events (
    event_id  uuid        NOT NULL,
    ts        timestamptz NOT NULL,
    city      text        NOT NULL,
    service   text        NOT NULL,
    type      text        NOT NULL,
    ref       text,
    opd       text,
    payload   jsonb       NOT NULL,
    rx        timestamptz NOT NULL,
    PRIMARY KEY (event_id, ts)
);
CREATE INDEX app_events_service ON app_events (city, service, ts);

-- Operator commands to controllers, and the controllers' answers.
CREATE TABLE commands (
    command_id    uuid        NOT NULL,
    ts            timestamptz NOT NULL,
    city          text        NOT NULL,
    intersection  text        NOT NULL,
    action        text        NOT NULL,
    issued_by     text        NOT NULL,
    payload       jsonb       NOT NULL,
    rx            timestamptz NOT NULL,
    PRIMARY KEY (command_id)
);
CREATE TABLE command_acks (
    command_id  uuid        NOT NULL,
    ts          timestamptz NOT NULL,
    city        text        NOT NULL,
    intersection text       NOT NULL,
    status      text        NOT NULL,
    reason      text,
    rx          timestamptz NOT NULL,
    PRIMARY KEY (command_id, ts)
);

-- Refused messages.
CREATE TABLE dead_letters (
    id             bigserial   PRIMARY KEY,
    rx             timestamptz NOT NULL,
    topic          text        NOT NULL,
    reason         text        NOT NULL,
    detail         text        NOT NULL,
    payload        text        NOT NULL,
    payload_bytes  integer     NOT NULL
);
CREATE INDEX dead_letters_rx ON dead_letters (rx);

-- Operator actions (who did what, when), for the consoles.
CREATE TABLE audit (
    id       bigserial   PRIMARY KEY,
    ts       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL,
    action   text        NOT NULL,
    target   text        NOT NULL,
    details  jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_ts ON audit (ts);
