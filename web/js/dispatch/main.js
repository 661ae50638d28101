// The dispatcher console (/dispatch), as a page for the shell: its
// subscription (calls, units, the feeds and the city's counters, without a
// rate cap so that a resume is exact; callers' personal data come with a
// dispatcher's session), the server's targets (read before the panels are
// built; the built-in ones when that fails or takes too long), its layout
// (top bar, the alerts strip of the dispatcher's trade, the day's KPIs, the
// four queues, the call detail, the units, the command line; beside the
// units, the selected call's recommended units and their map), the console
// state its panels share, the keys, and
// `window.__kendali.dispatch` for tests: `selected`, `pending`,
// `run(commandText)`, `select(callId)`, the `targets`, the selected call's
// `recommendation` (the server's answer, `current` when made for the call as
// it is now) and `pickAt(lat, lon)`, what a click on the map at that point
// does (puts `L <lat> <lon> ` on the command line; returns it, or null when
// no position may be picked for the selected call).

import { mount } from '../shell/shell.js';
import { h } from '../dom.js';
import { words } from './strings.js';
import { Console } from './console.js';
import { UnitClock } from './model.js';
import { TARGETS, loadTargets } from './targets.js';
import { installKeys, focusQueue } from './keys.js';
import * as topbar from './topbar.js';
import * as kpis from './kpis.js';
import * as queues from './queues.js';
import * as units from './units.js';
import * as detail from './detail.js';
import * as command from './command.js';
import * as recommend from './recommendations.js';
import * as alerts from '../alerts/strip.js';
import { setupAlerts } from '../alerts/index.js';
import { dispatchRelevant } from '../alerts/model.js';

/**
 * Calls and units are the console's matter; feeds tell when a line has gone
 * quiet; the counters carry the day's KPIs (`counters` passes the family
 * filters but not this kind filter, so it must be named); the city's alerts
 * (the strip shows the dispatcher's: alerts/model.js dispatchRelevant).
 */
const KINDS = 'call,unit,feed,counters,alert';
/** How long the console waits for the server's targets before it starts with its own, ms. */
const TARGETS_WAIT_MS = 3000;

let con = null;

const shell = await mount({
  root: document.getElementById('dispatch'),
  panels: { topbar, alerts, kpis, queues, units, detail, command, recommend },
  staleFamilies: ['calls'],
  subscription: ({ city }) => ({ kinds: KINDS, cities: city }),

  async setup({ root, replica, i18n, city, now, invalidate, me, scenario }) {
    const t = words(i18n.lang);
    document.title = `Kendali · ${t('title')}`;
    // The targets every panel reads (TARGETS, in place). A slow answer still
    // counts when it comes: the panels render again with it.
    const loaded = loadTargets().catch(() => false);
    const first = await Promise.race([loaded.then(() => true), new Promise((ok) => setTimeout(() => ok(false), TARGETS_WAIT_MS))]);
    if (!first) loaded.then(() => invalidate('dispatch'));
    con = replica.observe(new Console({ replica, city, now, t, i18n, invalidate, mayDispatch: !!(me.may && me.may.dispatch) }));
    const unitClock = replica.observe(new UnitClock());
    const alertsCtx = setupAlerts({ replica, city, me, i18n, scenario, now, invalidate, relevant: dispatchRelevant });
    alertsCtx.say = (text, sev) => con.say(text, sev);
    alertsCtx.onLeave = () => focusQueue(con, con.focusQueue, true);
    con.alerts = alertsCtx;
    const area = (tag, cls) => h(tag, { class: cls });
    const els = {
      topbar: area('header', 'topbar'),
      alerts: area('section', 'alerts-strip'),
      kpis: area('section', 'kpis'),
      queues: area('section', 'queues'),
      detail: area('section', 'panel detail'),
      recommend: area('section', 'panel recommend'),
      units: area('section', 'panel units'),
      command: area('footer', 'cmd'),
    };
    const side = h('div', { class: 'side' }, els.recommend, els.units);
    root.append(els.topbar, els.alerts, els.kpis, h('main', { class: 'work' }, els.queues, els.detail, side), els.command);
    installKeys(con);
    window.__kendali.dispatch = {
      get selected() {
        return con.sel ? con.sel.call_id : null;
      },
      get pending() {
        return con.actions.list();
      },
      run: (commandText) => con.run(commandText),
      select(callId) {
        const call = con.findCall(callId);
        if (call) con.select(call);
        return !!call;
      },
      targets: TARGETS,
      get recommendation() {
        const st = con.rec.state;
        return st && st.answer ? { ...st.answer, current: con.rec.current(), loading: st.loading } : null;
      },
      pickAt: (lat, lon) => (con.picker ? con.picker.at(lat, lon) : null),
    };
    return {
      panels: Object.entries(els).map(([type, el]) => ({ type, el })),
      ctx: { con, t, unitClock, alerts: alertsCtx },
      stats: () => ({ selected: con.sel ? con.sel.call_id : null, pending: con.actions.items.size }),
    };
  },
});

// The ringing queue has the keys when the page opens (and only then: focus never moves by itself).
if (shell && con) focusQueue(con, 0, true);
