// KPI history: a series per KPI (`{city}/{service}/{metric}`) for the
// sparklines, built from the replica's live `kpi` updates, filled in at load
// from the server's history API, and saved in localStorage so a reload (a
// browser update, a power cut) keeps the last hours. Bounded in metrics and
// points.

import { Ring } from './bounded.js';
import { get } from './api.js';

/** KPI samples kept per metric: 4 h at the simulator's 10 s pace. */
export const KPI_POINTS = 1440;
/** KPI metrics with a history (oldest dropped beyond). */
const KPI_METRICS_KEPT = 128;
/** KPI history saved in localStorage (a reload keeps the sparklines): one point per minute, 4 h. */
const SAVED_POINT_MS = 60_000;
const SAVED_SPAN_MS = 4 * 3600_000;
/** How far back the sparklines reach at load, and the bucket asked of the history API. */
const HISTORY_SPAN_MS = 4 * 3600_000;
const HISTORY_BUCKET = '2m';

export class KpiHistory {
  /** `city`: the city shown (the storage key); `invalidate(kind, key)`: asks for a render. */
  /** `replay`: the series of a replay (?at=): nothing loaded or saved, no live history fetched. */
  constructor({ city, invalidate, replay = false }) {
    this.replay = replay;
    this.city = city;
    this.invalidate = invalidate;
    this.series = new Map();
    if (!replay) this.load();
  }

  /** The series of one KPI key (a Ring), or undefined. */
  get(key) {
    return this.series.get(key);
  }

  get size() {
    return this.series.size;
  }

  points() {
    let n = 0;
    for (const r of this.series.values()) n += r.length;
    return n;
  }

  /** Replica observer: records every live KPI sample. */
  update(kind, key, old, v) {
    if (kind !== 'kpi' || !v) return;
    const ts = Date.parse(v.ts);
    if (!Number.isFinite(ts) || !Number.isFinite(v.value)) return;
    let ring = this.series.get(key);
    if (!ring) {
      if (this.series.size >= KPI_METRICS_KEPT) this.series.delete(this.series.keys().next().value);
      ring = new Ring(KPI_POINTS);
      this.series.set(key, ring);
    }
    const last = ring.last();
    if (last && ts <= last[0]) return; // a replay or a late sample
    ring.push(ts, v.value);
  }

  /**
   * Merges server history (`[[ms, value]]`) under the samples gathered live:
   * only points older than the oldest one held.
   */
  prefill(key, points) {
    const held = this.series.get(key);
    const oldest = held && held.length ? held.at(0)[0] : Infinity;
    const ring = new Ring(KPI_POINTS);
    const older = points.filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v) && t < oldest).sort((a, b) => a[0] - b[0]);
    for (const [t, v] of older.slice(-KPI_POINTS)) ring.push(t, v);
    if (held) for (let i = 0; i < held.length; i++) ring.push(...held.at(i));
    if (!ring.length) return;
    if (!held && this.series.size >= KPI_METRICS_KEPT) this.series.delete(this.series.keys().next().value);
    this.series.set(key, ring);
    this.invalidate('kpi', key);
  }

  /**
   * Fills the series of each service's headline KPI with the last hours from
   * `/api/history/kpi/...`; live samples carry on from there. Best effort.
   */
  async fetchHistory(scenario) {
    const city = this.city;
    if (!city || !scenario?.services) return;
    const from = encodeURIComponent(new Date(Date.now() - HISTORY_SPAN_MS).toISOString());
    const wanted = scenario.services.flatMap((sv) => (sv.kpis || []).slice(0, 1).map((k) => [sv.id, k.metric]));
    const enc = encodeURIComponent;
    await Promise.all(
      wanted.map(async ([service, metric]) => {
        try {
          const body = await get(`/api/history/kpi/${enc(city)}/${enc(service)}/${enc(metric)}?from=${from}&bucket=${HISTORY_BUCKET}`);
          const points = (body?.points || []).map((p) => [Date.parse(p.t), p.avg]);
          this.prefill(`${city}/${service}/${metric}`, points);
        } catch (e) {
          /* no history: the sparkline starts with the live samples */
        }
      }),
    );
  }

  storageKey() {
    return `kendali.kpi.${this.city || 'all'}`;
  }

  /** Saves the series (one point per minute) for the next page load; best effort. */
  save() {
    try {
      const cutoff = Date.now() - SAVED_SPAN_MS;
      const series = {};
      for (const [key, ring] of this.series) {
        const pts = [];
        let lastMinute = -1;
        for (let i = 0; i < ring.length; i++) {
          const [t, v] = ring.at(i);
          if (t < cutoff) continue;
          const minute = Math.floor(t / SAVED_POINT_MS);
          if (minute === lastMinute) pts[pts.length - 1] = [t, v];
          else pts.push([t, v]);
          lastMinute = minute;
        }
        if (pts.length) series[key] = pts;
      }
      localStorage.setItem(this.storageKey(), JSON.stringify({ v: 1, series }));
    } catch (e) {
      /* storage full or disabled: the sparklines simply start afresh next time */
    }
  }

  /** Restores the series saved by a previous page load of this city. */
  load() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.storageKey()) || 'null');
      if (!saved || saved.v !== 1) return;
      const cutoff = Date.now() - SAVED_SPAN_MS;
      for (const [key, pts] of Object.entries(saved.series || {}).slice(0, KPI_METRICS_KEPT)) {
        const ring = new Ring(KPI_POINTS);
        for (const [t, v] of pts) if (t >= cutoff && Number.isFinite(v)) ring.push(t, v);
        if (ring.length) this.series.set(key, ring);
      }
    } catch (e) {
      /* unreadable: start afresh */
    }
  }
}
