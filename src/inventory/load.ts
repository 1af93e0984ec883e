/**
 * Reads the YAML inventory file (`CONVEYOR_INVENTORY`; the path is passed in, this module reads
 * no environment). Every problem comes back at once as a ValidationError with `hosts.<name>…`
 * paths, like a bad workflow definition.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { type Issue, ValidationError } from '../errors.ts';
import { formatPath } from '../flows/path.ts';
import { checkInventory } from './resolve.ts';
import { type HostEntry, hostEntrySchema, type Inventory, inventorySchema } from './schema.ts';

/** Parses and validates inventory YAML; `source` names it in messages. */
export function parseInventory(text: string, source = 'inventory'): Inventory {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) {
    throw new ValidationError(
      `${source} is not valid YAML`,
      doc.errors.map((e) => ({ path: '', message: e.message.split('\n')[0]! })),
    );
  }
  const parsed = inventorySchema.safeParse(doc.toJS({ maxAliasCount: 100 }) ?? {});
  if (!parsed.success) throw new ValidationError(`${source} is invalid`, zodIssues(parsed.error));
  const issues = checkInventory(parsed.data.hosts);
  if (issues.length) throw new ValidationError(`${source} is invalid`, issues);
  return parsed.data;
}

/** Reads and parses the inventory file at `path`. */
export async function loadInventoryFile(path: string): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new ValidationError(`cannot read the inventory file ${path}: ${(cause as Error).message}`, [], {
      cause,
    });
  }
  return parseInventory(text, `inventory file ${path}`);
}

/** Validates one entry (an API body); paths are relative to the entry. */
export function parseHostEntry(input: unknown): HostEntry {
  const parsed = hostEntrySchema.safeParse(input);
  if (!parsed.success) throw new ValidationError('host entry is invalid', zodIssues(parsed.error));
  return parsed.data;
}

function zodIssues(error: z.ZodError): Issue[] {
  return error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
}
