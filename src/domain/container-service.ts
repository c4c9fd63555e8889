import { z } from "@hono/zod-openapi";

/**
 * What an agent next to a plain Docker host acts on: a Compose service,
 * `<project>/<service>` (the labels com.docker.compose.project and
 * com.docker.compose.service), or standalone containers labelled
 * io.dockercloud.service=<name>. The project follows Compose's own rule for
 * project names (lowercase, so `Shop/web` names nothing Compose would run);
 * the service and the label take what a Swarm service's name takes.
 */
const CONTAINER_SERVICE = /^(?:[a-z0-9][a-z0-9_-]{0,62}\/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** `field` is how the message names the value: `target.container_service` from the API, `container_service` from an inventory. */
export const containerService = (field: string) => {
  const error = `${field} must be <compose project>/<compose service> (the project in lowercase letters, digits, '-' or '_'; the service in letters, digits, '-', '_' or '.') or the io.dockercloud.service label of standalone containers`;
  return z.string({ error }).regex(CONTAINER_SERVICE, { error });
};

/** Whether a container_service names a Compose service (else standalone containers by their label). */
export function isComposeService(value: string): boolean {
  return value.includes("/");
}
