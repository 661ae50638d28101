#!/bin/bash
# A restart over benchmarks/restart-history.sql's month (BENCHMARKS.md): three starts
# of `kendali serve --no-sim` (the binary is $1), each timed to /readyz with
# its peak RSS, then the 24-hour one-junction chart 40 times (p50/p95).
exe=${1:-target/release/kendali}
db=postgres://postgres@127.0.0.1/kendali_history
# Top the last 20 minutes up to now (a restart reads the last 15).
psql -qAt -h 127.0.0.1 -U postgres -d kendali_history -c "INSERT INTO atcs_state (ts, city, intersection, mode, plan, cycle_s, phase, rx, approach, green_s, flow_vph, queue_m, saturation, detector_ok)
SELECT t, 'kota', 'j-' || lpad(i::text, 4, '0'), 'adaptive', 'siang', 110, 1, t,
       ARRAY['utara','timur','selatan','barat'], ARRAY[30,30,30,30]::real[], ARRAY[800,700,600,500]::real[],
       ARRAY[20,30,10,5]::real[], ARRAY[0.55,0.62,0.71,0.4]::real[], ARRAY[true,true,true,true]
FROM generate_series(greatest((SELECT max(ts) FROM atcs_state WHERE city = 'kota' AND intersection = 'j-2000') + interval '1 second', now() - interval '20 minutes'), now(), interval '1 second') t,
     generate_series(1, 2000) i" >/dev/null
for run in 1 2 3; do
  t0=$(date +%s%N)
  $exe serve --no-sim --broker-addr 127.0.0.1:18833 --http 127.0.0.1:18083 --database-url $db > /tmp/restart-$run.log 2>&1 &
  pid=$!
  until curl -fs -o /dev/null 127.0.0.1:18083/readyz; do sleep 0.05; kill -0 $pid 2>/dev/null || { echo died; tail /tmp/restart-$run.log; exit 1; }; done
  t1=$(date +%s%N)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  applied=$(sed 's/\x1b\[[0-9;]*m//g' /tmp/restart-$run.log | grep -o 'applied=[0-9]*' | head -1)
  from=$(date -u -d '-24 hours' +%Y-%m-%dT%H:%M:%SZ); to=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  : > /tmp/chart-times
  for i in $(seq 1 40); do
    curl -s -o /dev/null -w '%{time_total}\n' "127.0.0.1:18083/api/charts/atcs/kota/j-0001.svg?from=$from&to=$to" >> /tmp/chart-times
  done
  p=$(sort -n /tmp/chart-times | awk '{a[NR]=$1} END {printf "p50 %.0f ms, p95 %.0f ms, max %.0f ms", a[int(NR*0.5)]*1000, a[int(NR*0.95)]*1000, a[NR]*1000}')
  code=$(curl -s -o /tmp/chart.svg -w '%{http_code}' "127.0.0.1:18083/api/charts/atcs/kota/j-0001.svg?from=$from&to=$to")
  echo "run $run: ready in $(( (t1 - t0) / 1000000 )) ms, peak RSS $((hwm / 1024)) MB, $applied; 24 h chart (HTTP $code, $(wc -c < /tmp/chart.svg) B): $p"
  kill $pid; wait $pid 2>/dev/null
done
