/** The OpenAPI 3.1 document of the API, generated from the zod schemas the handlers validate with. */
export { buildDocument, type DocumentOptions, openApiPath, operationAccess } from './document.ts';
export { OPERATIONS, TAGS, UNDOCUMENTED } from './operations.ts';
export { named, type OperationSpec, type ResponseSpec } from './registry.ts';
export { openApiDocument, openApiRoutes } from './routes.ts';
export * as responseSchemas from './schemas.ts';
