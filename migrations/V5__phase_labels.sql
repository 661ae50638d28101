-- Kendali schema v5: phases as real controllers name them (contract v1.2).
-- SCATS-style controllers name their phases with letters (A, B, C...); such
-- a phase is kept in `phase_label`, with `phase` 0. A numbered phase stays in
-- `phase` alone (`phase_label` NULL), so rows already written need nothing.
-- A nullable column without a default is added without rewriting the table,
-- on TimescaleDB's compressed hypertables too.
ALTER TABLE atcs_state ADD COLUMN IF NOT EXISTS phase_label text;

CREATE OR REPLACE VIEW atcs_telemetry AS
SELECT s.ts, s.city, s.intersection, a.approach, s.mode, s.plan, s.cycle_s, s.phase,
       a.green_s, a.flow_vph, a.queue_m, a.saturation, a.detector_ok, s.rx, s.phase_label
FROM atcs_state s
CROSS JOIN LATERAL unnest(s.approach, s.green_s, s.flow_vph, s.queue_m, s.saturation, s.detector_ok)
    AS a (approach, green_s, flow_vph, queue_m, saturation, detector_ok)
UNION ALL
SELECT ts, city, intersection, approach, mode, plan, cycle_s, phase,
       green_s, flow_vph, queue_m, saturation, detector_ok, rx, NULL::text
FROM atcs_telemetry_v1;
