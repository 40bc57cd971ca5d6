/**
 * The schemas of what the routes answer, for the route descriptions (route-table.ts) and so the
 * OpenAPI document. Request bodies are described by the schemas the routes validate with
 * (BundleSchema, the policy schemas, RejectBodySchema); these describe what goes back. The type
 * checks at the bottom tie each one to the type the code actually sends, so the two cannot drift.
 */
import { z } from "zod";
import { BundleSchema } from "../core/bundle.ts";
import { ERROR_STATUS, type ErrorCode } from "../core/errors.ts";
import { PolicyUpdateV1Schema, PolicyUpdateV2Schema } from "../core/policy-update.ts";
import { zJson } from "../core/schema.ts";
import { RIGHTS } from "../core/village-policy.ts";
import type { QuarantineMeta } from "../storage/quarantine.ts";
import type { IndexRow } from "../storage/index-rows.ts";

const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

/** Every error answer: `{"detail": "<what went wrong>", "code": "<code>"}`. */
export const ErrorAnswer = z.object({
  detail: z.string().describe("what went wrong, in one sentence"),
  code: z.enum(ERROR_CODES).describe("the error code; the same in HTTP answers, CLI messages and audit rows"),
});

export const HealthAnswer = z.object({ status: z.literal("ok") });

export const BundleAnswer = BundleSchema;

export const IngestAnswer = z.object({
  status: z.enum(["accepted", "duplicate"]),
  bundle_id: z.string(),
});

export const QuarantinedAnswer = z.object({
  status: z.literal("quarantined"),
  bundle_id: z.string(),
  code: z.string().describe("why the policy held it"),
  reason: z.string().describe("the same as code, for Python Links clients"),
  detail: z.string(),
});

const IndexRowSchema = z.object({
  bundle_id: z.string(),
  issuer: z.string(),
  window_days: z.int(),
  created_at: z.string(),
  village_id: z.string().nullable(),
  visibility: z.string(),
  subject: z.string(),
  predicate: z.string(),
  object: z.string().nullable(),
  value: zJson,
  computed_at: z.string(),
  derivation: z.string().nullable(),
  evidence: z.array(z.string()),
});

export const ClaimsPageAnswer = z.object({
  claims: z.array(IndexRowSchema),
  next_cursor: z.string().nullable().describe("give it back as `cursor` for the next page; null on the last"),
});

export const PolicyArtifact = z.union([PolicyUpdateV2Schema, PolicyUpdateV1Schema]);

export const PolicyAppliedAnswer = z.object({ status: z.enum(["applied", "unchanged"]), policy_hash: z.string() });

export const PolicyLatestAnswer = z.looseObject({
  policy_hash: z.string(),
  artifact: PolicyArtifact,
  signed: z.boolean(),
}).describe("the head artifact's own fields, plus artifact and signed");

export const PolicyUpdatesAnswer = z.object({
  updates: z.array(PolicyArtifact),
  next_cursor: z.string().nullable(),
  head: z.string().describe("the hash of the village's current policy"),
});

export const PolicyUpdatesPageAnswer = z.object({
  village_id: z.string(),
  since: z.string().nullable(),
  cursor: z.string().nullable(),
  limit: z.int(),
  next_cursor: z.string().nullable(),
  items: z.array(PolicyArtifact),
});

const ClaimPreview = z.object({
  subject: z.string(),
  predicate: z.string(),
  object: z.string().nullable(),
});

const QuarantineEntryAnswer = z.object({
  bundle_id: z.string(),
  village_id: z.string(),
  reason: z.string().describe("the error code the policy held it for"),
  detail: z.string().nullable(),
  received_at: z.string().nullable(),
  actor: z.string().nullable().describe("the member who pushed it"),
  issuer_key_hash: z.string().nullable(),
  policy_hash: z.string().nullable().describe("short hash of the policy in force when it was held"),
  issuer: z.string().nullable().describe("the bundle's issuer id (null if the held file does not parse)"),
  claims_count: z.int().describe("how many claims the bundle carries"),
  claims_preview: z.array(ClaimPreview).describe("its first claims"),
});

export const QuarantineListAnswer = z.object({
  entries: z.array(QuarantineEntryAnswer),
  total: z.int().describe("bundles the village holds, on every page"),
  next_cursor: z.string().nullable().describe("give it back as `cursor` for the next page; null on the last"),
});

export const ApprovedAnswer = z.object({ status: z.literal("approved"), bundle_id: z.string() });
export const RejectedAnswer = z.object({ status: z.literal("rejected"), bundle_id: z.string() });

export const MyVillagesAnswer = z.object({
  villages: z.array(
    z.object({
      village_id: z.string(),
      name: z.string(),
      member_id: z.string(),
      role: z.string(),
      rights: z.array(z.enum(RIGHTS)).describe("what the token may do there under the village's current policy"),
    }),
  ),
});

export const OpenApiAnswer = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) });

// Compile-time ties between the schemas above and the types the routes send.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameIndexRow: Same<z.output<typeof IndexRowSchema>, IndexRow> = true;
const sameQuarantineMeta: Same<Omit<z.output<typeof QuarantineEntryAnswer>, "issuer" | "claims_count" | "claims_preview">, QuarantineMeta> = true;
void [sameIndexRow, sameQuarantineMeta];
