/** The API's operational middleware: request ids, request logs. */
export { MAX_REQUEST_ID_LENGTH, REQUEST_ID_HEADER, requestId } from './request-id.ts';
export { type RequestVariables, requestLog, requestLogger } from './request-log.ts';
