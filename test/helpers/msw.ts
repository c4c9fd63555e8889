import { FetchInterceptor } from "@mswjs/interceptors/fetch";
import { defineNetwork, InterceptorSource } from "msw/experimental";

/**
 * MSW on the Workers runtime: `msw/node` patches Node's http module, which
 * workerd lacks, so this network intercepts `fetch` only. Any request no test
 * mocked is an error.
 */
export const network = defineNetwork({
  sources: [new InterceptorSource({ interceptors: [new FetchInterceptor()] })],
  onUnhandledFrame: "error",
});
