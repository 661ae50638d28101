// When each unit's current status began: the `ts` of the first status
// message that showed it (a unit re-sends an unchanged status), kept as a
// replica observer by the consoles that show how long a unit has been on
// its way (the dispatcher's and the traffic officer's).

import { BoundedMap } from './bounded.js';

export class UnitStatusClock {
  /** `kept`: units remembered at most. */
  constructor(kept) {
    this.since = new BoundedMap(kept);
  }

  /** Replica observer hook. */
  update(kind, key, old, value) {
    if (kind !== 'unit') return;
    if (value == null) {
      this.since.delete(key);
      return;
    }
    const held = this.since.get(key);
    if (!held || held.status !== value.status) this.since.set(key, { status: value.status, at: value.ts == null ? NaN : Date.parse(value.ts) });
  }

  /** ms the unit entity `u`'s status began (NaN: unknown). */
  of(u) {
    const held = this.since.get(`${u.city}/${u.unit}`);
    return held && held.status === u.status ? held.at : NaN;
  }
}
