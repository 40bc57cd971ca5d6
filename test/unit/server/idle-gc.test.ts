import { describe, expect, test } from "bun:test";
import { IdleTracker, startIdleCollector } from "../../../src/server/idle-gc.ts";

describe("idle collector", () => {
  test("collects once after requests are followed by a quiet interval, never while they keep coming", () => {
    const t = new IdleTracker();
    expect(t.tick()).toBe(false); // nothing happened yet
    for (let i = 0; i < 5; i++) {
      t.touch();
      expect(t.tick()).toBe(false); // busy: requests in every interval
    }
    expect(t.tick()).toBe(true); // the first quiet interval
    expect(t.tick()).toBe(false); // once, not on every quiet interval after
    expect(t.tick()).toBe(false);
    t.touch();
    expect(t.tick()).toBe(false);
    expect(t.tick()).toBe(true); // the next burst gets its own collection
  });

  test("the timer calls collect after a burst and stop ends it", async () => {
    let collected = 0;
    const c = startIdleCollector({ intervalMs: 5, collect: () => collected++ });
    c.touch();
    for (let waited = 0; collected === 0 && waited < 5000; waited += 5) await Bun.sleep(5);
    c.stop();
    expect(collected).toBe(1);
    const after = collected;
    c.touch();
    await Bun.sleep(50);
    expect(collected).toBe(after);
  });
});
