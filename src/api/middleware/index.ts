/** The API's operational middleware: request ids, request logs, CORS, the rate limit. */
export { type CorsOrigins, cors, parseCorsOrigins } from './cors.ts';
export { parseRateLimit, type RateLimit, type RateLimitOptions, rateLimit } from './rate-limit.ts';
export { MAX_REQUEST_ID_LENGTH, REQUEST_ID_HEADER, requestId } from './request-id.ts';
export { requestLog, requestLogger } from './request-log.ts';
