// Alerts on a screen, wired in one call from a page's setup
// (`setupAlerts`): the words, the model of the alerts this screen shows
// (`relevant`: the wall all of its city's, a console those of its trade),
// the actions (for a person who may act), the chime, and
// `window.__kendali.alerts` for tests and the curious: `view()` (what is
// shown: the alerts in order, the banner's, the shelved, counts and the
// alarm rate), `pending()`, `notes()` (the ticker's transitions),
// `ack(alertId, reason?)`, `shelve(alertId, reason, minutes)`,
// `unshelve(alertId)` (each resolving to the POST's result), `mayAct` and
// `sound` (`state`: on, off or unsupported; chimes `played`, `missed`
// while off and `held` back as too soon). The returned object is what the
// alert panels and strips get as `ctx.alerts`; a page sets `say(text, sev)`
// (its message line) and `onLeave()` (where focus goes back from a strip).

import { alertWords } from './strings.js';
import { AlertModel } from './model.js';
import { AlertActions } from './actions.js';
import { Chime } from './sound.js';
import { reachable } from './ui.js';

/**
 * Roles that may acknowledge and shelve alerts, when `/api/me` does not say
 * (`may.acknowledge_alerts`): the wall role only watches.
 */
export const ACTING_ROLES = Object.freeze(['operator', 'dispatcher', 'traffic_officer', 'supervisor']);

/** Whether the person may act on alerts: the server's word (`/api/me`'s `may`) when it gives one, else the roles. */
export function mayActOn(me) {
  if (!me || me.anonymous) return false;
  const said = me.may && me.may.acknowledge_alerts;
  if (typeof said === 'boolean') return said;
  return (me.roles || []).some((r) => ACTING_ROLES.includes(r));
}

/**
 * `replica`, `city`, `me`, `i18n`, `scenario`, `now()` (the server's
 * clock), `invalidate(kind)` (panels showing alerts declare the kinds
 * `alert` and `alerts`), `relevant(alert)` (default: all).
 */
export function setupAlerts({ replica, city, me, i18n, scenario, now, invalidate, relevant = () => true }) {
  const t = alertWords(i18n.lang);
  const changed = () => invalidate('alerts');
  const api = {
    t,
    i18n,
    replica,
    scenario,
    now,
    mayAct: mayActOn(me),
    /** The page's message line, `(text, sev)`; refusals go there too. */
    say: null,
    /** Where the keys go back to from a strip (Esc). */
    onLeave: null,
    /** The strip whose buttons `focus()` reaches (set by strip.js). */
    strip: null,
    soundShown: false,
  };
  api.chime = new Chime({ changed });
  api.actions = replica.observe(new AlertActions({ replica, now, t, changed, failed: (text) => api.say && api.say(text, 'crit') }));
  api.model = replica.observe(
    new AlertModel({ replica, city, relevant, now, changed, onRaise: (a) => api.chime.alert(a, api.model.view().rate.flood), floodLimit: me?.alerts?.flood_per_10_min }),
  );
  /** Gives the keys to the strip: the first button (the first alert's Ack), else the strip itself. */
  api.focus = () => {
    const root = api.strip;
    if (!root) return false;
    const first = reachable(root).find((b) => b.dataset.alertAction === 'ack') || reachable(root)[0];
    (first || root).focus({ preventScroll: true });
    return true;
  };
  api.leave = () => {
    if (api.onLeave) api.onLeave();
    else if (document.activeElement && api.strip && api.strip.contains(document.activeElement)) document.activeElement.blur();
  };
  expose(api);
  return api;
}

/** `window.__kendali.alerts`. */
function expose(api) {
  const k = (window.__kendali = window.__kendali || {});
  const brief = (a) => ({
    alert_id: a.alert_id,
    rule: a.rule,
    entity: a.entity,
    group: a.group,
    priority: a.priority,
    state: a.state,
    acked_by: a.acked_by || null,
  });
  const find = (id) => {
    for (const { value } of api.replica.get('alert').values()) if (value.alert_id === id) return value;
    return null;
  };
  const act = (id, fn) => {
    const a = find(id);
    return a ? fn(a) : Promise.resolve({ ok: false, status: 0, error: `no alert ${id} on this screen` });
  };
  k.alerts = {
    view() {
      const v = api.model.view();
      return {
        shown: v.list.map(brief),
        incidents: v.incidents.map((i) => ({ group: i.group, alerts: i.alerts.map((a) => a.alert_id) })),
        top: v.top ? brief(v.top) : null,
        shelved: v.shelved.map(brief),
        suppressed: v.suppressed,
        unacked: v.unacked,
        byPriority: { ...v.byPriority },
        rate: { ...v.rate },
      };
    },
    pending: () => api.actions.list(),
    notes: () => api.model.notes.items.map((n) => ({ transition: n.transition, alert_id: n.alert.alert_id, at: n.at })),
    ack: (id, reason) => act(id, (a) => api.actions.ack(a, reason)),
    shelve: (id, reason, minutes) => act(id, (a) => api.actions.shelve(a, reason, minutes)),
    unshelve: (id) => act(id, (a) => api.actions.unshelve(a)),
    get mayAct() {
      return api.mayAct;
    },
    sound: {
      get state() {
        return api.chime.state();
      },
      get played() {
        return api.chime.played;
      },
      get missed() {
        return api.chime.missed;
      },
      get held() {
        return api.chime.held;
      },
    },
  };
}
