/** Types of build-state.mjs, for the TypeScript that imports it (tests, benchmarks). */
export declare const STAMP: string;
export declare function buildState(
  root: string,
  outDir?: string,
): { built: boolean; sources: boolean; fresh: boolean };
