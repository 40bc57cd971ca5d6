/**
 * The data directory on an 8 MiB tmpfs, filled up: clear 507s, nothing half-written, recovery
 * when space returns. Needs root (mount); skipped with the reason printed otherwise.
 */
import { SIZES } from "../faults/lib/scale.ts";
import { diskFullSuite } from "../faults/scenarios/disk-full.ts";

diskFullSuite(SIZES.fast, { timeoutMs: 60_000 });
