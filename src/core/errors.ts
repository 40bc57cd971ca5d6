/**
 * One error type for the whole program. HTTP answers, CLI messages and audit rows all carry the
 * same `code`, so a reason reads the same wherever an operator meets it.
 */

/** Every code with the HTTP status it answers with. */
export const ERROR_STATUS = {
  // input
  invalid_json: 400,
  invalid_schema: 400,
  invalid_village_id: 400,
  invalid_bundle_id: 400,
  invalid_member_id: 400,
  invalid_argument: 400,
  invalid_cursor: 400,
  body_too_large: 413,
  /** a file named on the command line is larger than any input of its kind (CLI only) */
  input_too_large: 413,
  unsupported_media_type: 415,
  /** the command line itself is wrong (CLI only: exit status 2) */
  usage: 400,
  // crypto
  invalid_signature: 400,
  bundle_id_mismatch: 400,
  unsigned_bundle: 400,
  invalid_public_key: 400,
  invalid_key_file: 400,
  policy_hash_mismatch: 400,
  village_mismatch: 400,
  invalid_checkpoint: 400,
  // auth
  missing_token: 401,
  invalid_token: 401,
  revoked_token: 401,
  forbidden: 403,
  tls_required: 403,
  rate_limited: 429,
  // the public inbox
  public_inbox_disabled: 403,
  public_inbox_quota_exceeded: 429,
  public_inbox_full: 507,
  // policy decisions (quarantine reasons)
  predicate_not_allowed: 422,
  window_too_large: 422,
  issuer_key_blocked: 422,
  issuer_key_not_allowed: 422,
  issuer_id_blocked: 422,
  issuer_id_not_allowed: 422,
  unsigned_not_allowed: 422,
  signature_alg_not_allowed: 422,
  // policy updates
  policy_signature_required: 403,
  policy_signer_not_allowed: 403,
  policy_quorum_not_met: 403,
  policy_expired: 409,
  policy_rollback: 409,
  policy_replay: 409,
  policy_divergence: 409,
  policy_lineage: 409,
  policy_incomplete: 400,
  /** a policy that would leave no way to change it again, or refuse every member */
  policy_lockout: 400,
  /** a signed update dated further ahead than clock skew explains */
  policy_future_dated: 409,
  /** a policy larger than a node publishes (MAX_POLICY_BYTES) */
  policy_too_large: 413,
  policy_already_signed: 409,
  unknown_policy_hash: 404,
  policy_update_not_found: 404,
  // audit log: a history that is not an extension of one already signed or seen
  audit_inconsistent: 409,
  // replication: a peer's identity key is not the one pinned on first contact
  node_key_changed: 409,
  // resources
  not_found: 404,
  village_not_found: 404,
  member_not_found: 404,
  bundle_not_found: 404,
  village_exists: 409,
  member_exists: 409,
  member_revoked: 409,
  peer_exists: 409,
  peer_not_found: 404,
  file_exists: 409,
  data_dir_in_use: 409,
  method_not_allowed: 405,
  data_dir_not_found: 404,
  no_edges: 422,
  // environment
  storage_full: 507,
  storage_error: 503,
  unavailable: 503,
  remote_error: 502,
  flock_unavailable: 500,
  internal_error: 500,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class LinksError extends Error {
  override readonly name = "LinksError";
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown; status?: number }) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options?.status ?? ERROR_STATUS[code];
  }

  get detail(): string {
    return this.message;
  }

  toJSON(): { detail: string; code: ErrorCode } {
    return { detail: this.message, code: this.code };
  }
}

export function isLinksError(e: unknown): e is LinksError {
  return e instanceof LinksError;
}

/** Maps an OS error from a write to the storage codes operators can act on. */
export function storageError(e: unknown, what: string): LinksError {
  if (e instanceof LinksError) return e;
  const code = (e as { code?: string })?.code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new LinksError("storage_full", `no space left on the device while ${what}`, { cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new LinksError("storage_error", `storage failed while ${what}: ${msg}`, { cause: e });
}
