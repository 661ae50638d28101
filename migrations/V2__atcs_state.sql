-- Kendali schema v2: ATCS telemetry as one row per controller state message,
-- its approaches in parallel arrays, instead of one row per approach.
--
-- Why: at 50,000 messages/s the database had to take 200,000 rows/s, and
-- every row paid its own header, its own copy of the message's time, city,
-- intersection, plan and receive time, and its own entry in every index.
-- `psql \copy` of the same 200,000 messages took 1.4-1.5 s as one row each
-- and 3.2-3.7 s as four rows each (BENCHMARKS.md, session 6).
--
-- `atcs_telemetry` stays, as a view with one row per approach: every query
-- that reads it reads the same columns as before.

CREATE TABLE atcs_state (
    ts            timestamptz NOT NULL,
    city          text        NOT NULL,
    intersection  text        NOT NULL,
    mode          text        NOT NULL,
    plan          text        NOT NULL,
    cycle_s       real        NOT NULL,
    phase         integer     NOT NULL,
    rx            timestamptz NOT NULL,
    -- One element per approach, in the same order in every array.
    approach      text[]      NOT NULL,
    green_s       real[]      NOT NULL,
    flow_vph      real[]      NOT NULL,
    queue_m       real[]      NOT NULL,
    saturation    real[]      NOT NULL,
    detector_ok   boolean[]   NOT NULL
);

-- The rows already written stay where they are, renamed: converting them
-- took about 10 s per million messages here, which a month of a city's
-- telemetry would turn into hours of a start that waits for it. The view
-- reads both; retention empties the old table as its rows age out.
-- On TimescaleDB a continuous aggregate was built on the old table (it
-- cannot read a view that unnests): Kendali now keeps atcs_minute itself on
-- both flavours.
DROP MATERIALIZED VIEW IF EXISTS atcs_minute_cagg;
ALTER TABLE atcs_telemetry RENAME TO atcs_telemetry_v1;

CREATE INDEX atcs_state_ts_brin ON atcs_state USING brin (ts);
CREATE INDEX atcs_state_rx_brin ON atcs_state USING brin (rx);
CREATE INDEX atcs_state_entity ON atcs_state (city, intersection, ts);

-- Conditions on the message's columns (city, intersection, ts, rx) reach
-- both tables' indexes through the UNION ALL.
CREATE VIEW atcs_telemetry AS
SELECT s.ts, s.city, s.intersection, a.approach, s.mode, s.plan, s.cycle_s, s.phase,
       a.green_s, a.flow_vph, a.queue_m, a.saturation, a.detector_ok, s.rx
FROM atcs_state s
CROSS JOIN LATERAL unnest(s.approach, s.green_s, s.flow_vph, s.queue_m, s.saturation, s.detector_ok)
    AS a (approach, green_s, flow_vph, queue_m, saturation, detector_ok)
UNION ALL
SELECT ts, city, intersection, approach, mode, plan, cycle_s, phase,
       green_s, flow_vph, queue_m, saturation, detector_ok, rx
FROM atcs_telemetry_v1;
