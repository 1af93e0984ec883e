/**
 * A host as the SSH layer sees it: fully resolved by the engine (inventory entry + secret values)
 * right before a connection is made. Secret values live only in memory on the worker; they are
 * never part of job data, run documents or error messages.
 */

/** How to authenticate to a host. */
export type HostAuth =
  | { type: 'key'; privateKey: string | Buffer; passphrase?: string }
  | { type: 'password'; password: string }
  /** `socket` defaults to the agent the engine found at start (`SSH_AUTH_SOCK`), passed in by it. */
  | { type: 'agent'; socket?: string };

/** One SSH host, resolved. */
export interface HostTarget {
  /** Inventory name; used in messages, pool keys and trust-on-first-use records. */
  name: string;
  /** DNS name or IP address. */
  address: string;
  port: number;
  user: string;
  auth: HostAuth;
  /**
   * The expected host key: an OpenSSH public key line (`ssh-ed25519 AAAA… [comment]`) or a
   * `SHA256:…` fingerprint as printed by `ssh-keygen -l`. Unset: known_hosts, then
   * trust-on-first-use, else the connection is refused.
   */
  hostKey?: string;
  /** Accept and record (through `onTrust`) an unknown host key on first contact. */
  trustOnFirstUse?: boolean;
  /** Reach this host through another one (ssh `-J`): a `direct-tcpip` channel on the jump host. */
  jump?: HostTarget;
}

/** Called when a trust-on-first-use host presents a key for the first time; the engine records it. */
export type TrustRecorder = (hostName: string, keyLine: string) => void | Promise<void>;
