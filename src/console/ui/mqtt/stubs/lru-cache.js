// The little of lru-cache that MQTT.js's topic-alias table uses (get, set, size, keys, clear),
// on a Map in use order: the least recently used alias goes first when the table is full.
export class LRUCache {
  constructor({ max }) { this.max = max; this.map = new Map(); }
  get size() { return this.map.size; }
  get(key) {
    if (!this.map.has(key)) return undefined;
    const value = this.map.get(key);
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }
  set(key, value) {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value);
    return this;
  }
  keys() { return this.map.keys(); }
  clear() { this.map.clear(); }
}
