#!/bin/bash
# A replay's first moment from the day's start against one from a stored
# checkpoint (BENCHMARKS.md "Replay"), on one node with the simulated city
# and a day of 50,000 call events (25,000 calls over 7 hours, the last 20
# minutes ago). The binary is $1. Checkpoints are stored every 20 s here
# (every hour by default). Moments are asked in pairs, each earlier than all
# asked before, so that none goes on from a checkpoint kept in memory:
#   day:        a moment 11+ minutes before the first stored checkpoint
#   checkpoint: one second after a stored checkpoint, the newest first
exe=${1:-target/release/kendali}
name=kendali_replay_bench
psql -qAt -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" || exit 1
db=postgres://postgres@127.0.0.1/$name
$exe migrate --database-url $db > /dev/null || exit 1
psql -qAt -h 127.0.0.1 -U postgres -d $name -c "
INSERT INTO call_events (event_id, ts, city, call_id, line, type, payload, rx)
SELECT id, t, 'cilegon', 'bench-' || n, '112', kind,
       jsonb_build_object('event_id', id, 'call_id', 'bench-' || n, 'ts', to_char(t AT TIME ZONE 'Asia/Jakarta', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+07:00\"'),
                          'line', '112', 'type', kind),
       t
FROM (SELECT n, gen_random_uuid() AS id, kind,
             now() - interval '20 minutes' - (25000 - n) * interval '1 second' + CASE kind WHEN 'answered' THEN interval '6 seconds' ELSE interval '0' END AS t
      FROM generate_series(1, 25000) n, unnest(ARRAY['received', 'answered']) kind) e" || exit 1
echo "day: $(psql -qAt -h 127.0.0.1 -U postgres -d $name -c "SELECT count(*), min(ts), max(ts) FROM call_events")"
KENDALI__DATABASE__CHECKPOINT_EVERY_S=20 RUST_LOG=warn \
  $exe serve --broker-addr 127.0.0.1:18834 --http 127.0.0.1:18084 --database-url $db > /tmp/replay-bench.log 2>&1 &
pid=$!
until curl -fs -o /dev/null 127.0.0.1:18084/readyz; do sleep 0.2; kill -0 $pid 2>/dev/null || { echo died; tail /tmp/replay-bench.log; exit 1; }; done
sleep ${WAIT_S:-200}
mapfile -t cps < <(psql -qAt -h 127.0.0.1 -U postgres -d $name -c "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM replay_checkpoints ORDER BY at DESC")
echo "checkpoints: ${#cps[@]}; $(psql -qAt -h 127.0.0.1 -U postgres -d $name -c "SELECT 'calls ' || max(calls) || ', size ' || pg_size_pretty(max(octet_length(state))::bigint) || ' (stored ' || pg_size_pretty(max(pg_column_size(state))::bigint) || ')' FROM replay_checkpoints")"
first=${cps[-1]}
ask() { # moment -> "ms origin"
  curl -s -o /tmp/replay-answer.json -w '%{time_total}' "127.0.0.1:18084/api/state?at=$1" | awk '{printf "%.1f", $1 * 1000}'
  echo " $(grep -o '"\(checkpoint\|advanced_from\)"' /tmp/replay-answer.json | head -1 | tr -d '"' || true)"
}
for i in $(seq 0 $(( ${#cps[@]} - 2 ))); do
  day=$(date -u -d "$first - $((11 + i)) minutes" +%Y-%m-%dT%H:%M:%S.%6NZ)
  cp=$(date -u -d "${cps[$i]} + 1 second" +%Y-%m-%dT%H:%M:%S.%6NZ)
  echo "pair $i: day $(ask $day) | checkpoint $(ask $cp)"
done
kill $pid; wait $pid 2>/dev/null
