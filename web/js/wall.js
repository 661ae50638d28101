// The wall: Kendali's video-wall screen, as a page for the shell. It declares
// its panels, its subscription and its layout (layouts.json, `?layout=`,
// `?screen=`), and keeps two views derived from the replica: the KPI series
// behind the sparklines and the alerts (alerts/: the banner, the alerts
// panel and the ticker show them; every alert of the city, since the wall
// watches the whole room).

import { mount } from './shell/shell.js';
import { loadLayout, mountLayout, viewport } from './layout.js';
import { KpiHistory } from './kpi-history.js';
import { setupAlerts } from './alerts/index.js';
import * as status from './panels/status.js';
import * as calls from './panels/calls.js';
import * as map from './panels/map.js';
import * as traffic from './panels/traffic.js';
import * as services from './panels/services.js';
import * as ticker from './panels/ticker.js';
import * as alertbanner from './panels/alertbanner.js';
import * as alerts from './panels/alerts.js';

/** What the wall subscribes to: every entity kind it shows, alerts included; no events (the server's alert rules watch those). */
const KINDS = 'intersection,call,unit,kpi,counters,feed,alert';
/** Per-entity update cap (the wall reads from metres away: 2 updates/s per entity is plenty). */
const MAX_RATE = 2;
/**
 * Ask for `view=summary` (intersections without metadata and per-approach
 * figures) when the scenario gives names, positions and approach names.
 */
const SUMMARY_VIEW = true;
/** How often the sparklines' history is saved for the next page load. */
const SAVE_KPI_EVERY_MS = 60_000;

mount({
  root: document.getElementById('wall'),
  panels: { status, calls, map, traffic, services, ticker, alertbanner, alerts },
  subscription: ({ city, scenario }) => ({
    kinds: KINDS,
    max_rate: MAX_RATE,
    cities: city,
    view: SUMMARY_VIEW && scenario?.intersections?.length ? 'summary' : null,
  }),

  async setup({ query, root, replica, scenario, city, now, invalidate, i18n, me, replaying }) {
    const layout = await loadLayout(query.get('layout'));
    const vp = viewport(layout, query.get('screen'));
    const kpi = replica.observe(new KpiHistory({ city, invalidate, replay: replaying }));
    // A signed-in operator or supervisor at the wall may acknowledge; the wall role only watches.
    const alertsCtx = setupAlerts({ replica, city, me, i18n, scenario, now, invalidate });
    if (!replaying) {
      // The last hours from the server, merged under live samples whenever they land.
      kpi.fetchHistory(scenario);
      // Sparkline history survives a reload (e.g. after a browser update).
      setInterval(() => kpi.save(), SAVE_KPI_EVERY_MS);
      window.addEventListener('pagehide', () => kpi.save());
    }
    return {
      panels: mountLayout(root, layout, vp),
      ctx: { layout, vp, kpi, alerts: alertsCtx },
      stats: () => ({ layout: layout.name, screen: vp.screen }),
      sizes: () => ({ kpi_series: kpi.size, kpi_points: kpi.points(), notes: alertsCtx.model.notes.items.length }),
    };
  },
});
