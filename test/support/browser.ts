/**
 * Headless Chromium for the browser tests: Debian's `/usr/bin/chromium` (never a download), with
 * the flags this machine needs. Without the background-networking ones, Chromium's own
 * connections are refused by the closed network, many at a time.
 */
import { type BrowserContext, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** The flags every headless start here takes. */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Every host but loopback fails to resolve: a page under test must need nothing from outside. */
export const LOOPBACK_ONLY = '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1';

/** A headless browser with its profile in `profileDir`. */
export function launchChromium(
  profileDir: string,
  options: { args?: string[]; viewport?: { width: number; height: number } } = {},
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    ...(options.viewport && { viewport: options.viewport }),
    args: [...CHROMIUM_FLAGS, ...(options.args ?? [])],
  });
}
