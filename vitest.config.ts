import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.jsonc" },
      miniflare: {
        // Test-only values; a deployed Worker gets real secrets.
        bindings: {
          ADMIN_TOKEN: "test-admin-token-0123456789abcdef01234567",
          SECRETS_KEY: "test-secrets-key-0123456789abcdef01234567",
          ALLOW_HTTP_LOCALHOST_TARGETS: "true",
          RETRY_BASE_DELAY_SECONDS: "0",
          TARGET_TIMEOUT_MS: "2000",
          MAX_ATTEMPTS: "4",
          // Another name of this deployment, for the self-target check (test/target-loops.test.ts).
          SELF_ORIGINS: "https://triggers.example.test",
        },
        queueConsumers: {
          "dockercloud-operations": {
            maxBatchTimeout: 0.05,
            maxRetries: 3,
            deadLetterQueue: "dockercloud-operations-dlq",
          },
          "dockercloud-operations-dlq": { maxBatchTimeout: 0.05 },
        },
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
    testTimeout: 20_000,
    // Runs of the dispatch model (test/dispatch-model.test.ts); MODEL_RUNS=1000 for a long pass by hand.
    provide: { modelRuns: Number(process.env.MODEL_RUNS ?? 60) },
  },
});
