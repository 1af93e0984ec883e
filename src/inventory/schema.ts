/**
 * The SSH inventory (docs/ssh.md, Inventory): hosts by name, each with an address, a user, groups,
 * an authentication method that names a secret (never holds one), an expected host key and an
 * optional jump host. The same schema validates `PUT /v1/hosts/:name` bodies and the YAML file
 * named by `CONVEYOR_INVENTORY`.
 */
import { z } from 'zod';

/** Host and group names: what `hosts:` in a step refers to. */
/** Names that JavaScript objects already answer to: never a host, secret or workflow name. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const notReserved = (name: string) => !RESERVED_NAMES.has(name);
const RESERVED_MESSAGE = '"__proto__", "constructor" and "prototype" are reserved names';

export const hostNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    'use letters, digits, ".", "_" and "-" (at most 64, starting with a letter or digit)',
  )
  .refine(notReserved, RESERVED_MESSAGE);

/** Names of secrets, as in `${{ secrets.NAME }}`. */
export const secretNameSchema = z
  .string()
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]{0,127}$/,
    'a secret name is letters, digits and "_", not starting with a digit',
  )
  .refine(notReserved, RESERVED_MESSAGE);

const KEY_LINE =
  /^(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,2}( .*)?$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

/**
 * How to log in. `type` defaults to `key`, so `{ secret: NAME }` (the short form) is key auth.
 * - `key`: `secret` holds the private key (OpenSSH or PEM); `passphraseSecret` its passphrase.
 * - `password`: `secret` holds the password.
 * - `agent`: the worker's ssh-agent (`SSH_AUTH_SOCK`), or the agent at `socket`.
 * One flat object rather than a union: a union's error is "invalid input", this says what is wrong.
 */
export const hostAuthSchema = z
  .object({
    type: z.enum(['key', 'password', 'agent']).default('key'),
    secret: secretNameSchema.optional(),
    passphraseSecret: secretNameSchema.optional(),
    socket: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((auth, ctx) => {
    const allowed = { key: ['secret', 'passphraseSecret'], password: ['secret'], agent: ['socket'] }[
      auth.type
    ];
    for (const field of ['secret', 'passphraseSecret', 'socket'] as const) {
      if (auth[field] !== undefined && !allowed.includes(field)) {
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: `"${field}" does not apply to ${auth.type} auth`,
        });
      }
    }
    if (auth.type !== 'agent' && auth.secret === undefined) {
      const what = auth.type === 'key' ? 'private key' : 'password';
      ctx.addIssue({ code: 'custom', path: ['secret'], message: `name the secret that holds the ${what}` });
    }
  });

/** One inventory entry. */
export const hostEntrySchema = z
  .object({
    /** DNS name or IP address. */
    address: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[^\s/@]+$/, 'an address is a host name or an IP address, without user, port or spaces'),
    port: z.number().int().min(1).max(65_535).default(22),
    user: z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}\$?$/, 'not a valid login name'),
    groups: z.array(hostNameSchema).default([]),
    auth: hostAuthSchema,
    /** An OpenSSH public key line (`ssh-ed25519 AAAA…`) or a `SHA256:` fingerprint. */
    hostKey: z
      .string()
      .trim()
      .refine((v) => KEY_LINE.test(v) || FINGERPRINT.test(v), {
        message: 'expected an OpenSSH public key line ("ssh-ed25519 AAAA…") or a "SHA256:…" fingerprint',
      })
      .optional(),
    /** Accept and record the host's key on first contact when no key is known. */
    trustOnFirstUse: z.boolean().default(false),
    /** Name of another inventory host to connect through (like `ssh -J`). */
    jump: hostNameSchema.optional(),
  })
  .strict();

/** The YAML inventory file: `hosts:` mapping names to entries. */
export const inventorySchema = z
  .object({
    hosts: z.record(hostNameSchema, hostEntrySchema).default({}),
  })
  .strict();

/** A validated host entry. */
export type HostEntry = z.infer<typeof hostEntrySchema>;
/** A host entry as written (defaults not yet applied). */
export type HostEntryInput = z.input<typeof hostEntrySchema>;
/** Validated `auth` of a host. */
export type HostAuthEntry = z.infer<typeof hostAuthSchema>;
/** A validated inventory. */
export type Inventory = z.infer<typeof inventorySchema>;
/** The group every host belongs to. */
export const ALL_GROUP = 'all';
