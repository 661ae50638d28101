-- A month of a 2,000-junction city for the restart measurement (issue 25;
-- BENCHMARKS.md, "A restart with a month of history"). Seed first: run the
-- simulated Cilegon for a minute into an empty database, e.g.
--   createdb kendali_history
--   KENDALI__SIM__ACCEL=60 timeout 70 kendali --scenario <cilegon at 09:00> \
--     --database-url postgres://postgres@127.0.0.1/kendali_history ...
-- then `psql -d kendali_history -f benchmarks/restart-history.sql` (about
-- 2.5 minutes, 6 GB): city `kota` gets 2,000 junctions with 30 days of
-- telemetry every 10 minutes and the last 20 minutes at one message a second
-- each, one junction at one a second for 24 hours (the chart's) with its
-- minute rollup, 30 days of calls, units, 150 services' KPIs and app events
-- copied from the seed. benchmarks/restart.sh measures.
-- 2,000 junctions of a city 'kota', from one of the seed's info payloads.
INSERT INTO intersections (city, intersection, info, rx)
SELECT 'kota', 'j-' || lpad(i::text, 4, '0'),
       jsonb_set(jsonb_set(jsonb_set(jsonb_set(info, '{intersection}', to_jsonb('j-' || lpad(i::text, 4, '0'))),
                 '{name}', to_jsonb('Simpang ' || i)), '{lat}', to_jsonb(-6.0 - (i % 50) * 0.002)), '{lon}', to_jsonb(106.0 + (i / 50) * 0.002)),
       now() - interval '30 days'
FROM (SELECT info FROM intersections WHERE city = 'cilegon' LIMIT 1) s, generate_series(1, 2000) i;
-- 30 days of telemetry every 10 minutes for each (the history), then the
-- last 20 minutes at one message a second each (what a restart reads).
INSERT INTO atcs_state (ts, city, intersection, mode, plan, cycle_s, phase, rx, approach, green_s, flow_vph, queue_m, saturation, detector_ok)
SELECT t, 'kota', 'j-' || lpad(i::text, 4, '0'), 'adaptive', 'siang', 110, 1, t,
       ARRAY['utara','timur','selatan','barat'], ARRAY[30,30,30,30]::real[], ARRAY[800,700,600,500]::real[],
       ARRAY[20,30,10,5]::real[], ARRAY[0.55,0.62,0.71,0.4]::real[], ARRAY[true,true,true,true]
FROM generate_series(now() - interval '30 days', now() - interval '20 minutes', interval '10 minutes') t,
     generate_series(1, 2000) i;
INSERT INTO atcs_state (ts, city, intersection, mode, plan, cycle_s, phase, rx, approach, green_s, flow_vph, queue_m, saturation, detector_ok)
SELECT t, 'kota', 'j-' || lpad(i::text, 4, '0'), 'adaptive', 'siang', 110, 1, t,
       ARRAY['utara','timur','selatan','barat'], ARRAY[30,30,30,30]::real[], ARRAY[800,700,600,500]::real[],
       ARRAY[20,30,10,5]::real[], ARRAY[0.55,0.62,0.71,0.4]::real[], ARRAY[true,true,true,true]
FROM generate_series(now() - interval '20 minutes', now() - interval '1 minute', interval '1 second') t,
     generate_series(1, 2000) i;
-- One junction at one message a second for the last 24 hours (the chart's).
INSERT INTO atcs_state (ts, city, intersection, mode, plan, cycle_s, phase, rx, approach, green_s, flow_vph, queue_m, saturation, detector_ok)
SELECT t, 'kota', 'j-0001', 'adaptive', 'siang', 110, 1, t,
       ARRAY['utara','timur','selatan','barat'], ARRAY[30,30,30,30]::real[], ARRAY[800,700,600,500]::real[],
       ARRAY[20,30,10,5]::real[], ARRAY[0.3 + random() * 0.6,0.62,0.71,0.4]::real[], ARRAY[true,true,true,true]
FROM generate_series(now() - interval '24 hours', now() - interval '20 minutes', interval '1 second') t
WHERE (extract(epoch FROM t)::bigint % 600) <> 0;
-- 30 days of calls: the seed's call events, 50 copies a day.
INSERT INTO call_events (event_id, ts, city, call_id, line, type, category, priority, agency, unit, payload, rx)
SELECT g.id, e.ts - g.back, 'kota', e.call_id || '-' || d || '-' || k,
       e.line, e.type, e.category, e.priority, e.agency, e.unit,
       jsonb_set(jsonb_set(jsonb_set(e.payload, '{call_id}', to_jsonb(e.call_id || '-' || d || '-' || k)),
                 '{ts}', to_jsonb(e.ts - g.back)), '{event_id}', to_jsonb(g.id)),
       e.rx - g.back
FROM call_events e, generate_series(0, 29) d, generate_series(1, 50) k,
     LATERAL (SELECT gen_random_uuid() AS id, e.event_id AS seed, d * interval '1 day' + k * interval '5 minutes' AS back) g
WHERE e.city = 'cilegon';
INSERT INTO calls (city, call_id, line, stage, open, category, priority, agency, unit, received_at, answered_at, classified_at,
                   dispatched_at, en_route_at, on_scene_at, closed_at, abandoned_at, transferred_at, answer_s, dispatch_s, projection, rx)
SELECT 'kota', c.call_id || '-' || d || '-' || k, c.line, 'closed', false, c.category, c.priority, c.agency, c.unit,
       c.received_at - b, c.answered_at - b, c.classified_at - b, c.dispatched_at - b, c.en_route_at - b, c.on_scene_at - b,
       coalesce(c.closed_at, c.received_at) - b + interval '30 minutes', NULL, NULL, c.answer_s, c.dispatch_s, c.projection, c.rx - b
FROM calls c, generate_series(0, 29) d, generate_series(1, 50) k,
     LATERAL (SELECT d * interval '1 day' + k * interval '5 minutes' AS b) g
WHERE c.city = 'cilegon';
-- Units: the seed's statuses every 5 minutes for 30 days.
INSERT INTO unit_status (ts, city, unit, agency, status, lat, lon, call_id, payload, rx)
SELECT t, 'kota', u.unit, u.agency, u.status, u.lat, u.lon, NULL, jsonb_set(u.payload, '{ts}', to_jsonb(t)), t
FROM (SELECT DISTINCT ON (unit) * FROM unit_status WHERE city = 'cilegon' ORDER BY unit, ts) u,
     generate_series(now() - interval '30 days', now() - interval '2 minutes', interval '5 minutes') t;
-- 150 services, two KPIs each, every 10 minutes for 30 days.
INSERT INTO kpi_samples (ts, city, service, metric, value, unit, target, window_s, rx)
SELECT t, 'kota', 'svc-' || lpad(s::text, 3, '0'), m, 90 + random() * 8, '%', 95, 86400, t
FROM generate_series(now() - interval '30 days', now() - interval '2 minutes', interval '10 minutes') t,
     generate_series(1, 150) s, unnest(ARRAY['on_time_pct', 'uptime_pct']) m;
-- App events: the seed's, 20 copies a day for 30 days.
INSERT INTO app_events (event_id, ts, city, service, type, ref, opd, payload, rx)
SELECT g.id, a.ts - g.back, 'kota', a.service, a.type, a.ref, a.opd,
       jsonb_set(jsonb_set(a.payload, '{ts}', to_jsonb(a.ts - g.back)), '{event_id}', to_jsonb(g.id)),
       a.rx - g.back
FROM app_events a, generate_series(0, 29) d, generate_series(1, 20) k,
     LATERAL (SELECT gen_random_uuid() AS id, a.event_id AS seed, d * interval '1 day' + k * interval '11 minutes' AS back) g
WHERE a.city = 'cilegon';
ANALYZE;
SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE n_live_tup > 1000 ORDER BY 2 DESC;
SELECT pg_size_pretty(pg_database_size(current_database()));
-- The chart's junction, rolled up per minute as a running node keeps it.
INSERT INTO atcs_minute (bucket, city, intersection, approach, samples, saturation_avg, saturation_max, flow_vph_avg, queue_m_avg, queue_m_max, green_s_avg)
SELECT date_trunc('minute', ts), city, intersection, approach, count(*), avg(saturation), max(saturation), avg(flow_vph), avg(queue_m), max(queue_m), avg(green_s)
FROM atcs_telemetry WHERE city = 'kota' AND intersection = 'j-0001' AND ts > now() - interval '25 hours' GROUP BY 1, 2, 3, 4
ON CONFLICT DO NOTHING;
UPDATE rollup_state SET rx_watermark = (SELECT max(rx) FROM atcs_state);
