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
-- that reads it reads the same columns as before, and its conditions on the
-- message's columns (city, intersection, ts, rx) reach atcs_state's indexes.

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

-- The rows already written, one per message (a message's approach rows share
-- ts, city, intersection and rx).
INSERT INTO atcs_state
SELECT ts, city, intersection, min(mode), min(plan), min(cycle_s), min(phase), rx,
       array_agg(approach ORDER BY approach), array_agg(green_s ORDER BY approach),
       array_agg(flow_vph ORDER BY approach), array_agg(queue_m ORDER BY approach),
       array_agg(saturation ORDER BY approach), array_agg(detector_ok ORDER BY approach)
FROM atcs_telemetry
GROUP BY ts, city, intersection, rx;

-- On TimescaleDB a continuous aggregate was built on the old table (it
-- cannot read a view that unnests): Kendali now keeps atcs_minute itself on
-- both flavours.
DROP MATERIALIZED VIEW IF EXISTS atcs_minute_cagg;
DROP TABLE atcs_telemetry;

CREATE INDEX atcs_state_ts_brin ON atcs_state USING brin (ts);
CREATE INDEX atcs_state_rx_brin ON atcs_state USING brin (rx);
CREATE INDEX atcs_state_entity ON atcs_state (city, intersection, ts);

CREATE VIEW atcs_telemetry AS
SELECT s.ts, s.city, s.intersection, a.approach, s.mode, s.plan, s.cycle_s, s.phase,
       a.green_s, a.flow_vph, a.queue_m, a.saturation, a.detector_ok, s.rx
FROM atcs_state s
CROSS JOIN LATERAL unnest(s.approach, s.green_s, s.flow_vph, s.queue_m, s.saturation, s.detector_ok)
    AS a (approach, green_s, flow_vph, queue_m, saturation, detector_ok);
