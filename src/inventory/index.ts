/** The SSH inventory: schema, YAML file loader, and `hosts:` name resolution. Pure code. */
export { loadInventoryFile, parseHostEntry, parseInventory } from './load.ts';
export { checkInventory, groupNames, resolveTargets } from './resolve.ts';
export {
  ALL_GROUP,
  type HostAuthEntry,
  type HostEntry,
  type HostEntryInput,
  hostAuthSchema,
  hostEntrySchema,
  hostNameSchema,
  type Inventory,
  inventorySchema,
  secretNameSchema,
} from './schema.ts';
