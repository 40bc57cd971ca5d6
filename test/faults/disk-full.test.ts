/**
 * Disk full at scale: more writes while full, and 0..31 pages free so every write fails at every
 * step of its sequence. Needs root (mount -t tmpfs); skipped with the reason printed otherwise.
 */
import { faultsSizes } from "./lib/scale.ts";
import { diskFullSuite } from "./scenarios/disk-full.ts";

diskFullSuite(faultsSizes(), { timeoutMs: 10 * 60_000 });
