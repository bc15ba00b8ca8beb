import { assert } from '../assert.js';

/** A FIFO ring buffer: O(1) push at the back, peek/shift at the front, indexed access from the front. */
export class Deque<T> {
  #items: (T | undefined)[];
  #head = 0;
  #length = 0;

  constructor(initialCapacity = 16) {
    this.#items = new Array(Math.max(4, initialCapacity));
  }

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) % this.#items.length] = item;
    this.#length++;
  }

  /** The i-th item from the front. */
  at(i: number): T {
    assert(i >= 0 && i < this.#length, `deque index ${i} out of 0..${this.#length - 1}`);
    return this.#items[(this.#head + i) % this.#items.length] as T;
  }

  peek(): T | undefined {
    return this.#length === 0 ? undefined : (this.#items[this.#head] as T);
  }

  shift(): T {
    assert(this.#length > 0, 'shift on empty deque');
    const item = this.#items[this.#head] as T;
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#length--;
    return item;
  }

  toArray(): T[] {
    const out: T[] = new Array(this.#length);
    for (let i = 0; i < this.#length; i++) out[i] = this.at(i);
    return out;
  }

  clear(): void {
    this.#items = new Array(this.#items.length);
    this.#head = 0;
    this.#length = 0;
  }

  #grow(): void {
    const items: (T | undefined)[] = new Array(this.#items.length * 2);
    for (let i = 0; i < this.#length; i++) items[i] = this.#items[(this.#head + i) % this.#items.length];
    this.#items = items;
    this.#head = 0;
  }
}
