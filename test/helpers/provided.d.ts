declare module "vitest" {
  export interface ProvidedContext {
    /** Runs of the dispatch model property test. */
    modelRuns: number;
  }
}

export {};
