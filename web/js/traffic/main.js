// The traffic officer console (/traffic), as a page for the shell: its
// subscription (junctions, their commands and feeds, and the field units,
// for the city, without a rate cap so that a resume is exact; the
// officer's districts are applied here, from /api/me), the desk
// (templates, limits, automatic mode; read before the panels are built, or
// later when slow), its layout (top bar; the alerts strip of the officer's
// trade and districts; the junction board; the opened junction's detail;
// the map, the emergency units and the commands in force; the message
// line), the keys, and `window.__kendali.traffic` for
// tests: `selected` and `approach` (the opened junction's key and its
// selected approach), `board()` (the junction keys in display order),
// `commands()` (every command known, as `{command_id, status, lease_state,
// remaining_s}`), `units()` (the emergency units panel's unit ids, in its
// order) and `run(action, body)` (the POST for the opened junction,
// resolving to `{status, body}`).

import { mount } from '../shell/shell.js';
import { h } from '../dom.js';
import { words } from './strings.js';
import { TrafficConsole } from './console.js';
import { Forms } from './forms.js';
import { installKeys, focusBoard } from './keys.js';
import * as topbar from './topbar.js';
import * as board from './board.js';
import * as map from './map.js';
import * as detail from './detail.js';
import * as inforce from './inforce.js';
import * as units from './units.js';
import * as footer from './footer.js';
import * as alerts from '../alerts/strip.js';
import { setupAlerts } from '../alerts/index.js';
import { trafficRelevant } from '../alerts/model.js';

/**
 * Junctions, the commands sent to them, their feeds (to grey out a silent
 * junction), the field units (family `units`: a green corridor is for
 * one on its way to a call), and the city's alerts (the strip shows the
 * officer's: alerts/model.js trafficRelevant, in the officer's districts).
 */
const KINDS = 'intersection,command,feed,unit,alert';
/** How long the console waits for the desk before it starts without it, ms. */
const DESK_WAIT_MS = 3000;

let con = null;

const shell = await mount({
  root: document.getElementById('traffic'),
  panels: { topbar, alerts, board, map, detail, units, inforce, footer },
  staleFamilies: ['atcs'],
  subscription: ({ city }) => ({ kinds: KINDS, cities: city }),

  async setup({ root, replica, i18n, city, now, invalidate, me, scenario }) {
    const t = words(i18n.lang);
    document.title = `Kendali · ${t('title')}`;
    con = new TrafficConsole({ replica, city, me, now, t, invalidate });
    // An alert without a district (an ATCS feed's) is every officer's.
    const relevant = (a) => trafficRelevant(a) && (a.district == null || con.scope.has(a.district));
    const alertsCtx = setupAlerts({ replica, city, me, i18n, scenario, now, invalidate, relevant });
    alertsCtx.say = (text, sev) => con.say(text, sev);
    alertsCtx.onLeave = () => focusBoard(con);
    con.alerts = alertsCtx;
    // A slow desk still counts when it comes: the panels render again with it.
    await Promise.race([con.startDesk(), new Promise((ok) => setTimeout(ok, DESK_WAIT_MS))]);
    const area = (tag, cls) => h(tag, { class: cls });
    const els = {
      topbar: area('header', 'topbar'),
      alerts: area('section', 'alerts-strip'),
      board: area('section', 'panel board'),
      detail: area('section', 'panel detail'),
      map: area('section', 'panel map'),
      units: area('section', 'panel units'),
      inforce: area('section', 'panel inforce'),
      footer: area('footer', 'foot'),
    };
    const side = h('div', { class: 'side' }, els.map, els.units, els.inforce);
    root.append(els.topbar, els.alerts, h('main', { class: 'work' }, els.board, els.detail, side), els.footer);
    const forms = new Forms({ con, root, t, i18n });
    installKeys(con, forms);
    con.openCorridor = (unit) => forms.corridor(unit);
    window.__kendali.traffic = {
      get selected() {
        return con.selected;
      },
      get approach() {
        return con.selected ? con.approach : null;
      },
      board: () => con.rows().map((r) => r.key),
      commands: () => con.commands.summary(),
      units: () => con.units().map((r) => r.unit),
      run: async (action, body) => {
        const res = await con.command(action, body || {});
        return { status: res.status, body: res.body };
      },
    };
    return {
      panels: Object.entries(els).map(([type, el]) => ({ type, el })),
      ctx: { con, t, alerts: alertsCtx },
      stats: () => ({ selected: con.selected, posted: con.commands.posted.size }),
    };
  },
});

// The board has the keys when the page opens (and only then: focus never moves by itself).
if (shell && con) focusBoard(con);
