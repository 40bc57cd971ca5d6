import { defineCommand } from "citty";
import { groupMeta } from "./groups.ts";
import { decodeBase64 } from "../core/base64.ts";
import { sha256Hex } from "../core/canonical.ts";
import { LinksError } from "../core/errors.ts";
import { isKeyHash, readPolicy, ROLES } from "../core/village-policy.ts";
import { appendAudit, type AuditAction } from "../storage/audit.ts";
import { addMember, listMembers, revokeMember, rotateToken } from "../storage/members.ts";
import { assertMemberId, assertVillageId, type DataPaths } from "../storage/paths.ts";
import { editPolicy, recordGenesis } from "../storage/policy.ts";
import { createVillage, listVillageIds, readVillage, villagePolicy, villagePolicyHash } from "../storage/villages.ts";
import { printable } from "../core/printable.ts";
import { dataArgs, jsonArgs, parsePositiveInt, printJson, repeated, say } from "./common.ts";
import { actorArgs, actorOf, openData } from "./context.ts";

const vidArg = { village_id: { type: "positional", description: "Village id ([A-Za-z0-9_-], 1-64 chars)", required: true } } as const;
const memberArg = { member_id: { type: "positional", description: "Member id", required: true } } as const;

/** The data directory and a checked id of a village that exists (else a clear error). */
function openVillage(args: { data?: string | undefined; village_id: string }): { paths: DataPaths; vid: string } {
  const vid = assertVillageId(args.village_id);
  const paths = openData(args);
  readVillage(paths, vid);
  return { paths, vid };
}

function roleOf(value: string | undefined): string {
  const role = value ?? "member";
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new LinksError("invalid_argument", `--role must be one of ${ROLES.join(", ")}, got ${JSON.stringify(role)}`);
  }
  return role;
}

/** Prints a token alone on the last line of stdout: it is shown once and never stored. */
function showToken(token: string, who: string): void {
  say(`token for ${who} (shown once; only its hash is stored):`);
  process.stdout.write(`${token}\n`);
}

const create = defineCommand({
  meta: { name: "create", description: "Create a village with the default policy and its first admin" },
  args: {
    ...vidArg,
    name: { type: "positional", description: "Display name", required: true },
    admin: { type: "positional", description: "Member id of the first admin", required: true },
    description: { type: "string", description: "Description" },
    visibility: { type: "enum", options: ["private", "village", "public"], description: "Who may read the village's claims", default: "village" },
    "allowed-predicate": { type: "string", description: "Allowed predicate (repeat for several; default links.weighted_to)" },
    "max-window-days": { type: "string", description: "Largest window_days accepted", default: "30" },
    "require-issuer-allowlist": { type: "boolean", description: "Accept only allowlisted issuer keys" },
    ...dataArgs,
    ...actorArgs,
  },
  run({ args, rawArgs }) {
    const vid = assertVillageId(args.village_id);
    assertMemberId(args.admin);
    const paths = openData(args, { create: true });
    const predicates = repeated(rawArgs, "--allowed-predicate");
    const village = createVillage(paths, {
      villageId: vid,
      name: args.name,
      adminId: args.admin,
      description: args.description,
      policy: {
        visibility: args.visibility as "private" | "village" | "public",
        max_window_days: parsePositiveInt(args["max-window-days"], "max-window-days", 30),
        require_issuer_allowlist: Boolean(args["require-issuer-allowlist"]),
        ...(predicates.length > 0 ? { allowed_predicates: predicates } : {}),
      },
    });
    const token = addMember(paths, vid, args.admin, "admin");
    appendAudit(paths, { action: "village.create", village_id: vid, actor: actorOf(args), reason: `admin ${args.admin}` });
    recordGenesis(paths, village, actorOf(args));
    appendAudit(paths, { action: "member.add", village_id: vid, actor: actorOf(args), reason: `${args.admin} as admin` });
    say(`created village ${vid} in ${paths.root}`);
    showToken(token, args.admin);
  },
});

const addMemberCmd = defineCommand({
  meta: { name: "add-member", description: "Add a member; prints its token on the last line" },
  args: {
    ...vidArg,
    ...memberArg,
    role: { type: "enum", options: [...ROLES], description: "Role", default: "member" },
    ...dataArgs,
    ...actorArgs,
  },
  run({ args }) {
    const { paths, vid } = openVillage(args);
    const role = roleOf(args.role);
    const token = addMember(paths, vid, args.member_id, role);
    appendAudit(paths, { action: "member.add", village_id: vid, actor: actorOf(args), reason: `${args.member_id} as ${role}` });
    showToken(token, args.member_id);
  },
});

const revokeMemberCmd = defineCommand({
  meta: { name: "revoke-member", description: "Revoke every token of a member" },
  args: {
    ...vidArg,
    ...memberArg,
    reason: { type: "string", description: "Why, for the record", default: "revoked by operator" },
    ...dataArgs,
    ...actorArgs,
  },
  run({ args }) {
    const { paths, vid } = openVillage(args);
    revokeMember(paths, vid, args.member_id, actorOf(args), args.reason);
    appendAudit(paths, { action: "member.revoke", village_id: vid, actor: actorOf(args), reason: `${args.member_id}: ${args.reason}` });
    say(`revoked ${args.member_id} in ${vid}`);
  },
});

const rotateCmd = defineCommand({
  meta: { name: "rotate-token", description: "Issue a new token for a member and revoke the old one" },
  args: {
    ...vidArg,
    ...memberArg,
    ...dataArgs,
    ...actorArgs,
  },
  run({ args }) {
    const { paths, vid } = openVillage(args);
    const token = rotateToken(paths, vid, args.member_id, actorOf(args));
    appendAudit(paths, { action: "member.rotate", village_id: vid, actor: actorOf(args), reason: args.member_id });
    showToken(token, args.member_id);
  },
});

const members = defineCommand({
  meta: { name: "members", description: "List a village's members (revoked ones marked)" },
  args: { ...vidArg, ...dataArgs, ...jsonArgs },
  run({ args }) {
    const { paths, vid } = openVillage(args);
    const list = listMembers(paths, vid);
    if (args.json) return printJson(list);
    for (const m of list) {
      process.stdout.write(`${printable(m.member_id)}\t${printable(m.role)}\t${printable(m.added_at)}${m.revoked ? "\trevoked" : ""}\n`);
    }
  },
});

const show = defineCommand({
  meta: { name: "show", description: "Show a village (village.json, policy included) as JSON" },
  args: { ...vidArg, ...dataArgs, ...jsonArgs },
  run({ args }) {
    const vid = assertVillageId(args.village_id);
    const village = readVillage(openData(args), vid);
    printJson(village);
  },
});

const list = defineCommand({
  meta: { name: "list", description: "List the villages in the data directory" },
  args: { ...dataArgs, ...jsonArgs },
  run({ args }) {
    const paths = openData(args);
    const rows = listVillageIds(paths).map((vid) => {
      const v = readVillage(paths, vid);
      return { village_id: vid, name: v.name, visibility: villagePolicy(v).visibility, created_at: v.created_at };
    });
    if (args.json) return printJson(rows);
    for (const r of rows) process.stdout.write(`${printable(r.village_id)}\t${printable(r.name)}\t${printable(r.visibility)}\n`);
  },
});

/** A key argument: a 64-hex key hash, or a base64 public key that is hashed. */
function keyHashOf(value: string): string {
  if (isKeyHash(value)) return value;
  const bytes = decodeBase64(value);
  if (bytes === null || bytes.length !== 32) {
    throw new LinksError("invalid_public_key", `expected a base64 Ed25519 public key or a 64-hex key hash, got ${JSON.stringify(value.slice(0, 80))}`);
  }
  return sha256Hex(bytes);
}

type ListField = "issuer_allowlist" | "issuer_blocklist" | "issuer_id_allowlist" | "issuer_id_blocklist";

function listCommand(name: string, description: string, field: ListField, op: "add" | "remove", action: AuditAction) {
  const isKey = field === "issuer_allowlist" || field === "issuer_blocklist";
  return defineCommand({
    meta: { name, description },
    args: {
      ...vidArg,
      value: { type: "positional", description: isKey ? "Public key (base64) or key hash (64 hex)" : "Issuer id", required: true },
      ...dataArgs,
      ...actorArgs,
    },
    run({ args }) {
      const vid = assertVillageId(args.village_id);
      const paths = openData(args);
      const value = isKey ? keyHashOf(args.value) : args.value;
      const { changed } = editPolicy(
        paths,
        vid,
        (policy) => {
          const current = readPolicy(policy)[field];
          if (op === "add" ? current.includes(value) : !current.includes(value)) return null;
          return { ...policy, [field]: op === "add" ? [...current, value] : current.filter((v) => v !== value) };
        },
        { actor: actorOf(args) },
      );
      if (changed) {
        appendAudit(paths, {
          action,
          village_id: vid,
          actor: actorOf(args),
          reason: `${op === "add" ? "added to" : "removed from"} ${field}: ${value}`,
          policy_hash: villagePolicyHash(readVillage(paths, vid)),
        });
      }
      say(changed ? `${op === "add" ? "added" : "removed"} ${value} ${op === "add" ? "to" : "from"} ${field} of ${vid}` : `${field} of ${vid} already ${op === "add" ? "has" : "lacks"} ${value}; nothing changed`);
    },
  });
}

export default defineCommand({
  meta: groupMeta("villages"),
  subCommands: {
    create,
    list,
    show,
    members,
    "add-member": addMemberCmd,
    "revoke-member": revokeMemberCmd,
    "rotate-token": rotateCmd,
    "allow-issuer-key": listCommand("allow-issuer-key", "Add an issuer key to the allowlist", "issuer_allowlist", "add", "issuer.allow"),
    "unallow-issuer-key": listCommand("unallow-issuer-key", "Remove an issuer key from the allowlist", "issuer_allowlist", "remove", "issuer.unallow"),
    "block-issuer-key": listCommand("block-issuer-key", "Add an issuer key to the blocklist", "issuer_blocklist", "add", "issuer.block"),
    "unblock-issuer-key": listCommand("unblock-issuer-key", "Remove an issuer key from the blocklist", "issuer_blocklist", "remove", "issuer.unblock"),
    "allow-issuer-id": listCommand("allow-issuer-id", "Add an issuer id to the allowlist", "issuer_id_allowlist", "add", "issuer.allow"),
    "unallow-issuer-id": listCommand("unallow-issuer-id", "Remove an issuer id from the allowlist", "issuer_id_allowlist", "remove", "issuer.unallow"),
    "block-issuer-id": listCommand("block-issuer-id", "Add an issuer id to the blocklist", "issuer_id_blocklist", "add", "issuer.block"),
    "unblock-issuer-id": listCommand("unblock-issuer-id", "Remove an issuer id from the blocklist", "issuer_id_blocklist", "remove", "issuer.unblock"),
  },
});
