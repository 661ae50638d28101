// The render scheduler: frames change the replica at once, but panels render
// at most once per animation frame, only when something they show changed
// (the kinds they declare), on the clock's second for panels that show a
// running clock, and no more often than a panel's `minMs`. Nothing renders
// while the page is hidden; everything does when it shows again.

export class Scheduler {
  /**
   * `now()`: the server's clock; `warm()`: true once data arrived (the render
   * time's maximum counts from a second later: building the DOM is a one-off);
   * `afterDraw(now)`: runs after the panels on every draw (the banners).
   */
  constructor({ now, warm, afterDraw }) {
    this.now = now;
    this.warm = warm;
    this.afterDraw = afterDraw;
    this.panels = [];
    this.dirty = new Set();
    this.dirtyKeys = new Map();
    this.scheduled = false;
    this.followUp = null;
    this.ticked = true;
    // msMaxFirst is the first build; msMax counts from the first second after the first data.
    this.stats = { count: 0, ms: 0, msMax: 0, msMaxFirst: 0, msLast: 0, skippedHidden: 0, panelRenders: 0, warmAt: 0 };
    this.draw = this.draw.bind(this);
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) return;
      for (const p of this.panels) p.kinds.forEach((kind) => p.pending.add(kind));
      this.ticked = true;
      this.request();
    });
  }

  /**
   * Adds a panel: `{type, kinds, clock, minMs, render(job)}`, where `job` is
   * `{dirty: Set of kinds, keys: Map kind -> Set of keys, tick, now}`.
   */
  add(panel) {
    panel.pending = new Set(panel.kinds);
    panel.pendingKeys = new Map();
    panel.pendingTick = true;
    this.panels.push(panel);
    return panel;
  }

  /** Something of `kind` (optionally the entity `key`) changed: render soon. */
  invalidate(kind, key) {
    this.dirty.add(kind);
    if (key != null) {
      let s = this.dirtyKeys.get(kind);
      if (!s) this.dirtyKeys.set(kind, (s = new Set()));
      s.add(key);
    }
    this.request();
  }

  /** A clock second: panels with a clock render. */
  tick() {
    this.ticked = true;
    this.request();
  }

  request() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(this.draw);
  }

  draw() {
    this.scheduled = false;
    const render = this.stats;
    if (document.hidden) {
      render.skippedHidden++;
      return;
    }
    const t0 = performance.now();
    const dirty = this.dirty;
    const keys = this.dirtyKeys;
    const isTick = this.ticked;
    this.dirty = new Set();
    this.dirtyKeys = new Map();
    this.ticked = false;
    const now = this.now();
    let later = Infinity;
    for (const p of this.panels) {
      // Each panel collects what changed for it; a panel with a minimum interval
      // (the map: markers need not move 60 times a second) waits for its turn.
      for (const kind of p.kinds) if (dirty.has(kind)) p.pending.add(kind);
      for (const [kind, set] of keys) {
        if (!p.kinds.includes(kind)) continue;
        let mine = p.pendingKeys.get(kind);
        if (!mine) p.pendingKeys.set(kind, (mine = new Set()));
        for (const key of set) mine.add(key);
      }
      if (isTick && p.clock) p.pendingTick = true;
      if (!p.pending.size && !p.pendingTick) continue;
      const wait = (p.minMs || 0) - (t0 - (p.lastAt || -Infinity));
      if (wait > 0) {
        later = Math.min(later, wait);
        continue;
      }
      const job = { dirty: p.pending, keys: p.pendingKeys, tick: p.pendingTick, now };
      p.pending = new Set();
      p.pendingKeys = new Map();
      p.pendingTick = false;
      p.lastAt = t0;
      const pt = performance.now();
      p.render(job);
      const pms = performance.now() - pt;
      p.ms = p.ms == null ? pms : p.ms * 0.95 + pms * 0.05;
      p.msMax = Math.max(p.msMax || 0, pms);
      render.panelRenders++;
    }
    if (later < Infinity && !this.followUp) {
      this.followUp = setTimeout(() => {
        this.followUp = null;
        this.request();
      }, later + 1);
    }
    if (this.afterDraw) this.afterDraw(now);
    const ms = performance.now() - t0;
    render.count++;
    render.msLast = ms;
    render.ms = render.count === 1 ? ms : render.ms * 0.95 + ms * 0.05;
    if (!render.warmAt && this.warm()) render.warmAt = performance.now() + 1000;
    if (render.warmAt && performance.now() > render.warmAt) render.msMax = Math.max(render.msMax, ms);
    else render.msMaxFirst = Math.max(render.msMaxFirst, ms);
  }
}
