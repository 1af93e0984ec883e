/** Secret values at rest: the key and AES-256-GCM encryption. Storage and routes live elsewhere. */
export { decryptSecret, encryptSecret, SecretDecryptError } from './cipher.ts';
export { generateSecretKey, parseSecretKey, type SecretKey, SecretKeyError } from './secret-key.ts';
