/** API access control: tokens and roles, the route → role table, the middleware. */
export { ACCESS_RULES, type Access, type AccessRule, accessFor } from './access.ts';
export { checkExposure, InsecureBindError, isLoopback } from './exposure.ts';
export { type RequireTokensOptions, requireTokens } from './middleware.ts';
export { matchesPattern } from './route-match.ts';
export { type ApiToken, findRole, parseTokens, ROLES, type Role, roleIncludes, safeEqual } from './tokens.ts';
