// Bounded collections: everything a screen accumulates over days (events,
// series, memories of what was noted) lives in one of these, so a screen left
// running for weeks holds as much as it did after an hour.

/** A fixed-capacity ring of (time, value) pairs. */
export class Ring {
  constructor(capacity) {
    this.cap = capacity;
    this.t = new Float64Array(capacity);
    this.v = new Float64Array(capacity);
    this.start = 0;
    this.length = 0;
  }
  push(t, v) {
    const i = (this.start + this.length) % this.cap;
    this.t[i] = t;
    this.v[i] = v;
    if (this.length < this.cap) this.length++;
    else this.start = (this.start + 1) % this.cap;
  }
  /** The i-th oldest point. */
  at(i) {
    const j = (this.start + i) % this.cap;
    return [this.t[j], this.v[j]];
  }
  last() {
    return this.length ? this.at(this.length - 1) : null;
  }
}

/** A bounded FIFO list. */
export class Fifo {
  constructor(capacity) {
    this.cap = capacity;
    this.items = [];
  }
  push(x) {
    this.items.push(x);
    if (this.items.length > this.cap) this.items.splice(0, this.items.length - this.cap);
  }
  clear() {
    this.items.length = 0;
  }
}

/** A Map that forgets its oldest key beyond `cap` keys. */
export class BoundedMap extends Map {
  constructor(cap) {
    super();
    this.cap = cap;
  }
  set(k, v) {
    if (!this.has(k) && this.size >= this.cap) this.delete(this.keys().next().value);
    return super.set(k, v);
  }
}
