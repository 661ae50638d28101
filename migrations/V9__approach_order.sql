-- Kendali schema v9: each approach's place in its message (`approach_n`,
-- 1-based), so that a state rebuilt from the store (a restart, a replay)
-- lists a junction's approaches as its controller did. Rows of the
-- per-approach v1 table have none (NULL: ordered by name).
CREATE OR REPLACE VIEW atcs_telemetry AS
SELECT s.ts, s.city, s.intersection, a.approach, s.mode, s.plan, s.cycle_s, s.phase,
       a.green_s, a.flow_vph, a.queue_m, a.saturation, a.detector_ok, s.rx, s.phase_label,
       a.approach_n
FROM atcs_state s
CROSS JOIN LATERAL unnest(s.approach, s.green_s, s.flow_vph, s.queue_m, s.saturation, s.detector_ok)
    WITH ORDINALITY AS a (approach, green_s, flow_vph, queue_m, saturation, detector_ok, approach_n)
UNION ALL
SELECT ts, city, intersection, approach, mode, plan, cycle_s, phase,
       green_s, flow_vph, queue_m, saturation, detector_ok, rx, NULL::text, NULL::bigint
FROM atcs_telemetry_v1;
