/**
 * The command groups with their one-line descriptions. Kept apart from the commands so that
 * `links --help` can list them without loading every command's code.
 */
export const GROUPS = {
  serve: "Run the node's HTTP server (put a TLS terminator in front of it)",
  villages: "Create villages and manage members, tokens and issuer lists",
  keys: "Ed25519 signing keys",
  claims: "Build, sign, verify, ingest and query claim bundles",
  derive: "Derive weighted links from an observations JSONL file",
  policy: "Village policy: verify, export, sign, apply and pull signed updates",
  quarantine: "Review bundles held by village policy",
  sync: "Push bundles to and pull bundles from other nodes",
  audit: "Read the append-only audit log and verify it against the node's signed checkpoints",
  peers: "Replicate villages with other nodes: add, list, remove, sync and status of peers",
} as const;

export type GroupName = keyof typeof GROUPS;

export function groupMeta(name: GroupName): { name: GroupName; description: string } {
  return { name, description: GROUPS[name] };
}
