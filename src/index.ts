import { createApp } from "./app";
import { ApiError, errorResponse } from "./http/errors";
import { normalizeRequest } from "./http/normalize";
import { consumeDeadLetters, consumeOperations } from "./queue/consumer";
import { registerAccountRoutes } from "./routes/account";
import { registerActionRoutes } from "./routes/actions";
import { registerAdminRoutes } from "./routes/admin";
import { registerAgentConnectRoutes } from "./routes/agent-connect";
import { registerAgentRoutes } from "./routes/agents";
import { registerCallRoutes } from "./routes/calls";
import { serveConsole } from "./routes/console";
import { registerHealthRoutes } from "./routes/health";
import { registerOpenApi } from "./routes/openapi";
import { registerRegistryHookRoutes } from "./routes/registry-hooks";
import { registerServiceRoutes } from "./routes/services";
import { registerStreamTicketRoutes } from "./routes/stream-tickets";
import { registerStreamRoutes } from "./routes/streams";
import { registerTriggerRoutes } from "./routes/triggers";

export { Directory } from "./durable-objects/directory";
export { ServiceLocator } from "./durable-objects/locator";
export { NamespaceObject } from "./durable-objects/namespace";
export { StreamTickets } from "./durable-objects/stream-tickets";

const app = createApp();
registerCallRoutes(app);
registerAdminRoutes(app);
registerAccountRoutes(app);
registerServiceRoutes(app);
registerTriggerRoutes(app);
registerAgentRoutes(app);
registerAgentConnectRoutes(app);
registerRegistryHookRoutes(app);
registerStreamRoutes(app);
registerStreamTicketRoutes(app);
registerActionRoutes(app);
registerHealthRoutes(app);
registerOpenApi(app);

export default {
  async fetch(request, env, ctx) {
    // The console's pages and files (GET outside /api/); anything else is the API's.
    const page = await serveConsole(request, env);
    if (page) return page;
    let normalized: Request;
    try {
      normalized = await normalizeRequest(request);
    } catch (err) {
      if (err instanceof ApiError) return errorResponse(err.status, err.message, err.headers);
      throw err;
    }
    return app.fetch(normalized, env, ctx);
  },

  async queue(batch, env, ctx) {
    if (batch.queue.endsWith("-dlq")) await consumeDeadLetters(batch, env);
    else await consumeOperations(batch, env, ctx);
  },
} satisfies ExportedHandler<Env>;
