import { FetchInterceptor } from "@mswjs/interceptors/fetch";
import { defineNetwork, InterceptorSource } from "msw/experimental";

/** Outbound requests that no test mocked; setup.ts fails the test that made one. */
export const unhandled: string[] = [];

/**
 * MSW on the Workers runtime: `msw/node` patches Node's http module, which
 * workerd lacks, so this network intercepts `fetch` only. An unmocked request
 * is refused (the fetch throws) and recorded.
 */
export const network = defineNetwork({
  sources: [new InterceptorSource({ interceptors: [new FetchInterceptor()] })],
  context: { quiet: true },
  onUnhandledFrame: ({ frame, defaults }) => {
    const data = (frame as unknown as { data?: { request?: Request } }).data;
    unhandled.push(data?.request ? `${data.request.method} ${data.request.url}` : "unknown request");
    defaults.error();
  },
});
